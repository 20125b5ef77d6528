// The demo of the whole path (Lambda → handoff → runner) arrives with the local control plane.
// Until then it runs the middleware's end-to-end check: a wrapped handler under a Lambda
// harness that enforces its timeout, handing off to a loopback ECS endpoint.
console.log('immortal-lambda demo: the full demo (local control plane and runner) is not built yet.');
console.log('Run `npm test` to see the handoff exercised end to end against a loopback ECS endpoint.');
