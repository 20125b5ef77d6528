#!/usr/bin/env node
// Keeps the code readable in one sitting: no function, method, constructor or accessor in
// packages/*/src spans more than 100 lines (nested functions count in their parent's span), and
// no source file is longer than 400 lines. Parsed with TypeScript's own parser.
//
//   node scripts/check-shape.mjs [--max-function 100] [--max-file 400]
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { root } from './tools.mjs';

const option = (name, fallback) => {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const maxFunction = option('--max-function', 100);
const maxFile = option('--max-file', 400);
const ts = createRequire(join(root, 'packages', 'middleware', 'package.json'))('typescript');

function sources(folder) {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.[cm]?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The name a reader would look a function up by. */
function nameOf(node) {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
    return parent.name.getText();
  return '(anonymous function)';
}

const isFunction = (node) =>
  ts.isFunctionDeclaration(node) ||
  ts.isFunctionExpression(node) ||
  ts.isArrowFunction(node) ||
  ts.isMethodDeclaration(node) ||
  ts.isConstructorDeclaration(node) ||
  ts.isGetAccessorDeclaration(node) ||
  ts.isSetAccessorDeclaration(node);

const problems = [];
let files = 0;
for (const pkg of readdirSync(join(root, 'packages'))) {
  let found;
  try {
    found = sources(join(root, 'packages', pkg, 'src'));
  } catch {
    continue;
  }
  for (const file of found) {
    files += 1;
    const text = readFileSync(file, 'utf8');
    const where = relative(root, file);
    const lines = text.split('\n').length;
    if (lines > maxFile) problems.push(`${where}: ${lines} lines (at most ${maxFile})`);
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const line = (position) => source.getLineAndCharacterOfPosition(position).line + 1;
    const visit = (node) => {
      if (isFunction(node)) {
        const span = line(node.getEnd()) - line(node.getStart()) + 1;
        if (span > maxFunction)
          problems.push(
            `${where}:${line(node.getStart())} ${nameOf(node)}: ${span} lines (at most ${maxFunction})`,
          );
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
}
if (problems.length > 0) {
  console.error(`[shape] ${problems.length} room(s) too long; split them into named steps:`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
console.log(`[shape] ${files} source files: no function over ${maxFunction} lines, no file over ${maxFile}`);
