"""Owns the OpenAPI check: the document on stdin validated by `openapi-spec-validator` against the OpenAPI 3.1 specification.

Exits 0 and prints "valid" when it is; otherwise prints the validator's
error and exits 1.
"""

import json
import sys

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError


def main() -> None:
    document = json.loads(sys.stdin.read())
    try:
        validate(document)
    except OpenAPIValidationError as err:
        print(f"invalid: {err}")
        sys.exit(1)
    print("valid")


if __name__ == "__main__":
    main()
