"""HL7's official FHIR R4 JSON schema (`tests/data/fhir.schema.json`, see tests/data/README.md for
where the copy comes from): every Bundle the FHIR tests produce is validated against it, besides
the `fhir.resources` models, which do not catch everything the schema rejects (an empty string)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator

SCHEMA = Path(__file__).parent / "data" / "fhir.schema.json"


@cache
def validator() -> Draft6Validator:
    return Draft6Validator(json.loads(SCHEMA.read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every place the schema rejects in `document` (a resource or a Bundle), as `path: message`.

    The schema checks a resource by a oneOf over all resource types; one error per failing type
    would drown the real one. Each entry's resource is therefore also checked against its own
    type's definition, which names what is wrong."""
    found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator().iter_errors(document)]
    if not found:
        return []
    definitions = validator().schema["definitions"]
    resources = (
        [document]
        if document.get("resourceType") != "Bundle"
        else [entry["resource"] for entry in document.get("entry", []) if "resource" in entry]
    )
    precise = []
    for resource in resources:
        own = {"$ref": f"#/definitions/{resource.get('resourceType')}", "definitions": definitions}
        for e in Draft6Validator(own).iter_errors(resource):
            path = "/".join(map(str, e.absolute_path))
            precise.append(f"{resource.get('resourceType')}/{resource.get('id')} {path}: {e.message[:300]}")
    return precise or found
