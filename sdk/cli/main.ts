import { main } from "./run.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`qans: INTERNAL: ${String(error)}\n`);
    process.exitCode = 70;
  },
);
