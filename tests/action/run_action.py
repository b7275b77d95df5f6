#!/usr/bin/env python3
"""Runs the composite action in action.yml locally, the way GitHub's runner does: inputs with
their defaults, `${{ }}` expressions (inputs, github.action_path, runner.*, steps.*.outputs),
each step's `if:`, `env:` and `working-directory:`, `run:` steps through `bash -e`, step outputs
read back from $GITHUB_OUTPUT, and the action's outputs. `uses:` steps are not fetched (no
network): actions/cache restores from --cache-root if it holds a build, upload-sarif and
upload-artifact check the files they would upload and record them.

usage: run_action.py ACTION_YML WORKSPACE --temp DIR [--input NAME=VALUE ...]
Prints the run as JSON on stdout; exit 0 when every step passed, 1 otherwise.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Context:
    def __init__(self, inputs, action_path, temp):
        self.inputs = inputs
        self.action_path = action_path
        self.temp = temp
        self.steps = {}

    def value(self, name):
        parts = name.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            if parts[1] not in self.inputs:
                raise SystemExit(f"action.yml uses undeclared input {parts[1]}")
            return self.inputs[parts[1]]
        if name == "github.action_path":
            return self.action_path
        if name == "runner.temp":
            return self.temp
        if name == "runner.os":
            return "Linux"
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        raise SystemExit(f"unsupported expression in action.yml: {name}")

    def expand(self, text):
        return EXPR.sub(lambda m: str(self.value(m.group(1))), str(text))

    def condition(self, cond, failed):
        cond = EXPR.sub(lambda m: m.group(1), str(cond)).strip()
        result = True
        saw_always = False
        for term in (t.strip() for t in cond.split("&&")):
            if term == "always()":
                saw_always = True
                continue
            m = re.fullmatch(r"([\w.\-]+)\s*(==|!=)\s*'([^']*)'", term)
            if not m:
                raise SystemExit(f"unsupported condition in action.yml: {term}")
            left = self.value(m.group(1))
            ok = (left == m.group(3)) if m.group(2) == "==" else (left != m.group(3))
            result = result and ok
        # Without always(), a step is skipped once one has failed (success() is implied).
        return result and (saw_always or not failed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action")
    ap.add_argument("workspace")
    ap.add_argument("--temp", required=True)
    ap.add_argument("--input", action="append", default=[])
    args = ap.parse_args()
    action = yaml.safe_load(open(args.action, encoding="utf-8"))
    assert action["runs"]["using"] == "composite", "a composite action"
    given = dict(i.split("=", 1) for i in args.input)
    declared = action.get("inputs", {})
    for name in given:
        if name not in declared:
            raise SystemExit(f"no input {name} in action.yml")
    inputs = {}
    for name, spec in declared.items():
        if name in given:
            inputs[name] = given[name]
        elif spec.get("required") and "default" not in spec:
            raise SystemExit(f"input {name} is required")
        else:
            inputs[name] = str(spec.get("default", ""))
    action_path = os.path.dirname(os.path.abspath(args.action))
    ctx = Context(inputs, action_path, args.temp)
    files = {k: os.path.join(args.temp, k.lower()) for k in ("GITHUB_STEP_SUMMARY", "GITHUB_ENV")}
    for f in files.values():
        open(f, "a").close()
    failed = False
    record = []
    uploads = []
    for i, step in enumerate(action["runs"]["steps"]):
        sid = step.get("id", f"__{i}")
        name = step.get("name", sid)
        if "if" in step and not ctx.condition(step["if"], failed):
            record.append({"step": name, "skipped": True})
            continue
        outputs = {}
        if "uses" in step:
            uses = step["uses"]
            with_ = {k: ctx.expand(v) for k, v in step.get("with", {}).items()}
            if uses.startswith("actions/cache@"):
                hit = os.path.exists(os.path.join(with_["path"], "bin", "buildwatch"))
                outputs["cache-hit"] = "true" if hit else "false"
            elif uses.startswith("github/codeql-action/upload-sarif@"):
                sarif = json.load(open(with_["sarif_file"], encoding="utf-8"))
                assert sarif["version"] == "2.1.0", "SARIF 2.1.0"
                uploads.append({"sarif": with_["sarif_file"], "category": with_.get("category")})
            elif uses.startswith("actions/upload-artifact@"):
                paths = [p.strip() for p in with_["path"].splitlines() if p.strip()]
                missing = [p for p in paths if not os.path.exists(p)]
                if missing and with_.get("if-no-files-found") == "error":
                    failed = True
                uploads.append({"artifact": with_["name"], "paths": paths, "missing": missing})
            else:
                raise SystemExit(f"unknown action {uses}: teach run_action.py what it does")
            record.append({"step": name, "uses": uses, "outputs": outputs})
        else:
            assert step.get("shell") == "bash", f"step {name}: shell: bash"
            env = dict(os.environ)
            env.update({k: ctx.expand(v) for k, v in step.get("env", {}).items()})
            out_file = os.path.join(args.temp, f"output-{i}")
            open(out_file, "w").close()
            env.update(files)
            env.update({
                "GITHUB_OUTPUT": out_file,
                "GITHUB_ACTION_PATH": action_path,
                "RUNNER_TEMP": args.temp,
                "RUNNER_OS": "Linux",
                "GITHUB_ACTIONS": "true",
            })
            cwd = os.path.join(args.workspace, ctx.expand(step.get("working-directory", ".")))
            script = os.path.join(args.temp, f"step-{i}.sh")
            with open(script, "w") as f:
                f.write(ctx.expand(step["run"]))
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", script],
                                  cwd=cwd, env=env, stdout=sys.stderr)
            for line in open(out_file, encoding="utf-8").read().splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    outputs[k] = v
            if proc.returncode != 0:
                failed = True
            record.append({"step": name, "status": proc.returncode, "outputs": outputs})
        ctx.steps[sid] = outputs
    result = {
        "failed": failed,
        "steps": record,
        "uploads": uploads,
        "outputs": {k: ctx.expand(v["value"]) for k, v in action.get("outputs", {}).items()},
        "summary": open(files["GITHUB_STEP_SUMMARY"], encoding="utf-8").read(),
    }
    print(json.dumps(result, indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
