"""Python client for the skill server (``skillkit serve``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


class SkillServerError(RuntimeError):
    """The server answered with an error status; ``status`` holds the HTTP code."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"skill server error {status}: {detail}")
        self.status = status
        self.detail = detail


class SkillRouterClient:
    """Talk to a running skill server: ``route``, ``route_batch``, ``get_skill``, ``skill_files``,
    ``skill_file``, ``health``."""

    def __init__(self, base_url: str = "http://127.0.0.1:8765", token: str | None = None,
                 timeout: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, raw: bool = False, **kwargs: Any) -> Any:
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise SkillServerError(resp.status_code, str(detail))
        return resp.content if raw else resp.json()

    def route(self, query: str, k: int = 5, tier: str | None = None, method: str = "auto",
              with_body: bool = False) -> list[dict[str, Any]]:
        """Routed skills for one query, best first (dicts with name, score, id, tier, ...)."""
        payload = {"query": query, "k": k, "tier": tier, "method": method, "with_body": with_body}
        return self._call("POST", "/route", json=payload)["results"]

    def route_batch(self, queries: list[str], k: int = 5, tier: str | None = None,
                    method: str = "auto") -> list[list[dict[str, Any]]]:
        """Routed skills for several queries in one request."""
        payload = {"queries": queries, "k": k, "tier": tier, "method": method}
        return self._call("POST", "/route", json=payload)["batch"]

    def get_skill(self, name: str) -> dict[str, Any]:
        """One skill's full record by name or id."""
        return self._call("GET", f"/skills/{quote(name, safe='')}")

    def skill_files(self, name: str) -> list[dict[str, Any]]:
        """The files a skill bundles: dicts with path, size, sha256, executable."""
        return self._call("GET", f"/skills/{quote(name, safe='')}/files")["files"]

    def skill_file(self, name: str, path: str) -> bytes:
        """The bytes of one bundled file (``path`` relative to the skill folder, e.g. ``scripts/run.py``)."""
        return self._call("GET", f"/skills/{quote(name, safe='')}/files/{quote(path)}", raw=True)

    def health(self) -> dict[str, Any]:
        """Server status: skill count, reranker presence, limits."""
        return self._call("GET", "/health")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> SkillRouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
