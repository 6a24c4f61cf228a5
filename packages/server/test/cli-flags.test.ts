import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { addSettingOptions, configFrom } from "../src/cli/database-options.js";

const parse = (args: string[]) => {
  const command = addSettingOptions(new Command("serve").exitOverride(), ["allowHttp", "maxInFlight"]);
  command.parse(args, { from: "user" });
  return configFrom(command.opts());
};

describe("setting flags", () => {
  it("take a yes/no setting bare or with a value", () => {
    expect(parse(["--allow-http"]).allowHttp).toBe(true);
    expect(parse(["--allow-http", "false"]).allowHttp).toBe(false);
    expect(parse(["--allow-http", "true", "--max-in-flight", "7"])).toMatchObject({ allowHttp: true, maxInFlight: 7 });
  });

  it("still need a value for the others", () => {
    expect(() => parse(["--max-in-flight"])).toThrow(/argument missing/);
  });
});
