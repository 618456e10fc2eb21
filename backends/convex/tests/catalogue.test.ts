/// <reference types="vite/client" />
import { expect, test } from "vitest";
import { runScript, type ScriptFile } from "./runner";

// Every script file the catalogue has; read at transform time, so files
// added later are picked up by the next run.
const files = import.meta.glob<ScriptFile>("../../../protocol/tests/data/catalogue/*.json", {
  eager: true,
  import: "default",
});

test("the catalogue has script files", () => {
  expect(Object.keys(files).length).toBeGreaterThan(0);
});

for (const [path, file] of Object.entries(files)) {
  const name = path.slice(path.lastIndexOf("/") + 1);
  for (const script of file.scripts) {
    test(`${name} › ${script.name}`, async () => {
      await runScript(script);
    });
  }
}
