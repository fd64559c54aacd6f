// Renders Graphviz DOT files to SVG with Graphviz compiled to WebAssembly (@viz-js/viz): no system `dot` needed.
// Usage: node tools/render_svg.mjs docs/diagrams/lake.dot [...]   writes docs/diagrams/lake.svg beside each input.
// `make diagram` runs it with the project's pinned Node (node_modules/.bin/node).
import { readFile, writeFile } from "node:fs/promises";
import { instance } from "@viz-js/viz";

const inputs = process.argv.slice(2);
if (inputs.length === 0 || inputs.some((path) => !path.endsWith(".dot"))) {
  console.error("usage: node tools/render_svg.mjs <file>.dot [<file>.dot ...]");
  process.exit(2);
}

const viz = await instance();
let failed = false;
for (const input of inputs) {
  const result = viz.render(await readFile(input, "utf8"), { format: "svg", engine: "dot" });
  for (const error of result.errors) {
    console.error(`${input}: graphviz ${error.level ?? "message"}: ${error.message.trim()}`);
  }
  // Graphviz can report an error and still return a (broken, e.g. empty) drawing: treat both as failures.
  if (result.status !== "success" || result.errors.some((error) => error.level === "error")) {
    failed = true;
    continue;
  }
  const output = input.replace(/\.dot$/, ".svg");
  await writeFile(output, result.output);
  console.log(output);
}
process.exit(failed ? 1 : 0);
