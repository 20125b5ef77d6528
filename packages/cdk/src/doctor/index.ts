export { type Check, formatCheck } from './check.js';
export { type DoctorClients, runDoctor } from './doctor.js';
