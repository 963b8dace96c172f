"""Make the OpenAPI document describe the one error format the app really sends.

Litestar documents its own validation error body ({"status_code", "detail", "extra"}) on
every handler that takes parameters, but the app's exception handlers answer with
{"error": {"code", "message", "details"}} (errors.py). Clients generated from the schema,
and schemathesis' response-schema check, must see the real shape.
"""

from __future__ import annotations

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import OpenAPIType, Reference, Schema

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={"error": Schema(
        type=OpenAPIType.OBJECT,
        required=["code", "message", "details"],
        properties={"code": Schema(type=OpenAPIType.STRING),
                    "message": Schema(type=OpenAPIType.STRING),
                    "details": Schema(type=OpenAPIType.OBJECT)})},
    description='Every error: {"error": {"code", "message", "details"}}',
)
_LITESTAR_ERROR = ["detail", "status_code"]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_error_format(app: Litestar) -> None:
    """Build the schema once and replace Litestar's error bodies with ours (in place)."""
    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    schemas = openapi.components.schemas
    schemas["Error"] = ERROR_SCHEMA
    ref = Reference(ref="#/components/schemas/Error")
    for item in (openapi.paths or {}).values():
        for method in METHODS:
            operation = getattr(item, method, None)
            for response in (getattr(operation, "responses", None) or {}).values():
                for media in (getattr(response, "content", None) or {}).values():
                    schema = media.schema
                    if isinstance(schema, Schema) and sorted(schema.required or []) == \
                            _LITESTAR_ERROR:
                        media.schema = ref
                        media.examples = None
