"""A readable API reference page rendered on the server from the OpenAPI schema: no JavaScript, no CDN."""

from functools import cache

from django.shortcuts import render
from django.urls import reverse
from django.views import View
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _type_label(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema or "oneOf" in schema:
        return " | ".join(_type_label(s, components) for s in schema.get("allOf") or schema["oneOf"])
    if schema.get("type") == "array":
        return f"list of {_type_label(schema.get('items', {}), components)}"
    label = schema.get("type", "object")
    if schema.get("format"):
        label += f" ({schema['format']})"
    if schema.get("nullable"):
        label += ", or null"
    return label


def _fields(schema: dict, components: dict) -> list[dict]:
    schema = _resolve(schema, components)
    if schema.get("type") == "array":
        schema = _resolve(schema.get("items", {}), components)
    if "enum" in schema:
        return [{"name": "(value)", "type": "string", "enum": schema["enum"], "required": True, "description": ""}]
    required = set(schema.get("required", []))
    fields = []
    for name, field in schema.get("properties", {}).items():
        # drf-spectacular wraps a described enum as {"allOf": [{"$ref": ...}], "description": ...}.
        resolved = _resolve(field.get("allOf", [field])[0], components)
        fields.append({
            "name": name,
            "type": _type_label(field, components),
            "enum": resolved.get("enum"),
            "required": name in required,
            "read_only": field.get("readOnly", False),
            # The enum's values are listed already; drop the bullet list drf-spectacular appends.
            "description": (field.get("description") or resolved.get("description", "")).split("\n\n* `")[0],
        })
    return fields


def _operations(schema: dict) -> list[dict]:
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            responses = []
            for code, response in op.get("responses", {}).items():
                content = response.get("content", {})
                media, body_schema = next(iter(content.items()), (None, {}))
                responses.append({
                    "code": code,
                    "description": response.get("description", ""),
                    "media_type": media,
                    "fields": _fields(body_schema.get("schema", {}), components) if body_schema else [],
                })
            operations.append({
                "method": method.upper(),
                "path": path,
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "parameters": op.get("parameters", []),
                "request_fields": _fields(body, components) if body else [],
                "responses": responses,
                "auth": [next(iter(s), "none") for s in op.get("security", [])],
            })
    return operations


@cache
def _docs_context() -> dict:
    """The schema does not change while the process runs, so it is generated once."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {"info": schema["info"], "operations": _operations(schema), "schema_url": reverse("api:schema")}


class ApiDocsView(View):
    """Public, like the schema itself: it describes the API and holds no data."""

    def get(self, request):
        return render(request, "api/docs.html", _docs_context())
