"""The OpenAPI document kept in the repo is the one the server generates from its types."""

from __future__ import annotations

import json
from importlib import resources

from smppgw.http.api import openapi_document

REGENERATE = (
    'python -c "import json; from smppgw.http.api import openapi_document; '
    "open('smppgw/http/openapi.json', 'w').write(json.dumps(openapi_document(), indent=2, ensure_ascii=False, "
    "sort_keys=True) + '\\n')\""
)


def test_repo_copy_matches_the_generated_document() -> None:
    kept = json.loads(resources.files("smppgw.http").joinpath("openapi.json").read_text(encoding="utf-8"))
    assert kept == json.loads(json.dumps(openapi_document())), f"openapi.json is stale; regenerate with: {REGENERATE}"


def test_every_path_documents_its_errors_and_security() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.")
    for path in ("/v1/messages", "/v1/messages/batch"):
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{"bearer": []}]
        assert {"400", "401", "422"} <= set(operation["responses"])
    assert "429" in document["paths"]["/v1/messages"]["post"]["responses"]
