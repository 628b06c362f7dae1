"""The README's deploy recipes, taken from the README and run as a CD tool would run them.

``<!-- recipe:NAME -->`` marks the code block of a recipe. The GitHub Actions
step's script runs under bash with real curl, its ``${{ ... }}`` expressions
filled in as GitHub would; the Argo CD template's body is rendered (each
``{{ ... }}`` replaced by what Argo CD would put there) and sent with the
service's method, path and headers.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
from ruamel.yaml import YAML

from guardian.wire.records import format_time

README = Path(__file__).resolve().parents[3] / "README.md"
DEPLOYER_TOKEN = "tok-deployer-0123456789"
DEPLOYER = {
    "ci": (["deployer"], DEPLOYER_TOKEN),
    "alice": (["SRE"], "tok-alice-0123456789"),
}
_GITHUB_EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
_GO_TEMPLATE = re.compile(r"\{\{(.+?)\}\}(?!\})")


def readme_block(name: str) -> str:
    """The code block that follows ``<!-- recipe:name -->`` in the README."""
    text = README.read_text(encoding="utf-8")
    marker = text.index(f"<!-- recipe:{name} -->")
    start = text.index("\n", text.index("```", marker)) + 1
    return text[start : text.index("\n```", start)]


async def run_script(script: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run a bash script; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-eo",
        "pipefail",
        "-c",
        script,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def github_step(port: int, service: str, version: str, token: str) -> tuple[int, str]:
    """The GitHub Actions step for ``service`` at tag ``version``: (202 or curl's code, body)."""
    step = YAML(typ="safe").load(readme_block("github-actions"))[0]
    values = {
        "vars.GUARDIAN_URL": f"http://127.0.0.1:{port}",
        "secrets.GUARDIAN_DEPLOYER_TOKEN": token,
        "github.run_id": str(8_100_000 + sum(map(ord, service))),
        "github.run_attempt": "1",
        "github.ref_name": version,
        "github.actor": "octocat",
    }

    def fill(text: str) -> str:
        return _GITHUB_EXPRESSION.sub(lambda m: values[m.group(1)], text)

    env = {name: fill(str(value)) for name, value in step["env"].items()}
    env["SERVICE"] = service
    code, out, err = await run_script(fill(step["run"]), env)
    return (202 if code == 0 else code), out or err


async def argo_cd_body(
    port: int, service: str, version: str, at_ms: int, token: str
) -> tuple[int, str]:
    """The Argo CD notification for an application ``service`` synced at ``at_ms``."""
    config = YAML(typ="safe").load(readme_block("argo-cd"))
    webhook = YAML(typ="safe").load(config["service.webhook.guardian"])
    template = YAML(typ="safe").load(config["template.guardian-upgraded"])["webhook"]["guardian"]
    values: dict[str, Any] = {
        ".app.metadata.uid": f"5f0c-{service}",
        ".app.metadata.name": service,
        ".app.spec.project": "default",
        ".app.spec.destination.namespace": "production",
        ".app.status.operationState.startedAt": format_time(at_ms - 20_000),
        ".app.status.operationState.finishedAt": format_time(at_ms),
        '(splitList ":" (index .app.status.summary.images 0)) | last': version,
    }
    body = _GO_TEMPLATE.sub(lambda m: values[m.group(1).strip()], template["body"])
    headers = {h["name"]: h["value"].replace("$guardian-token", token) for h in webhook["headers"]}
    url = f"http://127.0.0.1:{port}{template['path']}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(template["method"], url, data=body.encode(), headers=headers) as response,
    ):
        return response.status, await response.text()
