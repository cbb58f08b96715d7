"""The ``credentialSchema`` check: validate a credential against the JSON Schemas it names,
for the schemas Microcred bundles (``credentials/schemas/``). Nothing is fetched."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from credentials.errors import CredentialError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_VALIDATOR_TYPE = "1EdTechJsonSchemaValidator2019"
BUNDLED = {
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/"
    "ob_v3p0_achievementcredential_schema.json": "ob_v3p0_achievementcredential.json",
}


class SchemaViolation(CredentialError):
    """The credential does not match a schema it declares."""


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def check(credential: dict[str, Any]) -> list[str]:
    """Validate against each declared, bundled schema; return the ids checked.

    Raises SchemaViolation naming the first failing path, or when no declared schema is known.
    """
    declared = credential.get("credentialSchema")
    declared = declared if isinstance(declared, list) else [declared] if declared else []
    if not declared:
        raise SchemaViolation("the credential declares no credentialSchema")
    checked = []
    for item in declared:
        if not isinstance(item, dict):
            raise SchemaViolation("credentialSchema entries must be objects with id and type")
        name = BUNDLED.get(item.get("id", ""))
        if name is None or item.get("type") != SCHEMA_VALIDATOR_TYPE:
            continue
        errors = sorted(_validator(name).iter_errors(credential), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            raise SchemaViolation(f"{where}: {err.message}")
        checked.append(item["id"])
    if not checked:
        raise SchemaViolation("none of the declared schemas is one Microcred can check offline: "
                              + ", ".join(str(i.get("id")) for i in declared if isinstance(i, dict)))
    return checked
