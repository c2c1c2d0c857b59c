"""Validates recorded API answers against bedrud's OpenAPI 3.1 document.

usage: validate_openapi.py DOCUMENT ANSWERS
ANSWERS is a JSON list of {"op": "METHOD /path", "status": 200, "body": ...}. Every object schema
with properties is closed (no undocumented fields) before validating. Prints one line per
problem and exits 1 when there is any.
"""

import json
import sys

from jsonschema import Draft202012Validator


def close(schema):
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for v in schema.values():
            close(v)
    elif isinstance(schema, list):
        for v in schema:
            close(v)


def main():
    doc = json.load(open(sys.argv[1]))
    answers = json.load(open(sys.argv[2]))
    components = doc.get("components", {})
    close(components)
    problems = 0
    for a in answers:
        method, path = a["op"].split(" ", 1)
        op = doc["paths"][path][method.lower()]
        resp = op["responses"].get(str(a["status"]))
        if resp is None:
            print(f"{a['op']}: status {a['status']} is not documented")
            problems += 1
            continue
        content = resp.get("content", {}).get("application/json")
        if content is None or "schema" not in content:
            continue
        schema = dict(content["schema"])
        close(schema)
        schema["components"] = components
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        for err in Draft202012Validator(schema).iter_errors(a["body"]):
            where = "/".join(str(p) for p in err.absolute_path)
            print(f"{a['op']} {a['status']}: at /{where}: {err.message}")
            problems += 1
    print(f"validated {len(answers)} answers, {problems} problems")
    sys.exit(1 if problems else 0)


main()
