"""Secrets never leave the environment: refuse credentials in config values, redact any text that is logged.

One helper, ``redact``, is used for everything that leaves the process (MLflow params, Prefect artifacts and
logs, CLI error messages); ``credential_problems`` is what the config loader uses to refuse a config that
carries a credential at all.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
# query/connection-string keys whose value is a secret (libpq sslpassword, password, token, api keys, ...)
SECRET_KEYS = ("password", "passwd", "pwd", "sslpassword", "secret", "token", "api_key", "apikey", "access_key",
               "secret_key", "sslkey_password", "auth")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@\s:]*)(?::(?P<pw>[^/@\s]*))?@")
_KV = re.compile(r"(?i)(?P<key>\b(?:" + "|".join(SECRET_KEYS) + r"))(?P<sep>\s*[=:]\s*)(?P<val>'[^']*'|\"[^\"]*\"|[^\s&;,]+)")
# a publish target's connection setting (warehouse.<target>.url / .dsn / ..._url): every target, built in or plugin
_TARGET_URL = re.compile(r"^warehouse\.[^.]+\.(?:\w*_)?(?:url|dsn|uri)$")
_TARGET_HINT = "the password variable the publish target reads (GENRE_PG_PASSWORD for postgres)"
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}")

# config key -> the environment variable to use instead of a credential in the value
ENV_HINTS = {
    "tracking.uri": "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
    "warehouse.postgres.url": "GENRE_PG_PASSWORD (or PGPASSWORD / a .pgpass file)",
    "llm.base_url": "the variable named by llm.api_key_env",
    "execution.dask.address": "Dask's TLS settings (DASK_DISTRIBUTED__COMM__TLS__*)",
}


def redact(text: Any) -> str:
    """``text`` as a string with URL passwords, ``password=``-style values and bearer tokens replaced by ***.

    ``postgresql://u:pw@h/db?sslpassword=x`` -> ``postgresql://u:***@h/db?sslpassword=***``.
    """
    s = str(text)
    s = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@" if m["pw"] is not None
                      else m.group(0), s)
    s = _KV.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", s)
    return _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", s)


def redact_mapping(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a flat or nested mapping with every string value passed through ``redact``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out[k] = redact_mapping(v)
        elif isinstance(v, list):
            out[k] = [redact(x) if isinstance(x, str) else x for x in v]
        else:
            out[k] = redact(v) if isinstance(v, str) else v
    return out


def _has_credential(value: str) -> str | None:
    m = _USERINFO.search(value)
    if m and (m["pw"] is not None or "://" in value and m["user"] and "token" in m["user"].lower()):
        return "a password in the URL (user:password@)"
    if m and m["user"] and m["pw"] is None and value.split("://", 1)[0].lower().startswith(("http", "tcp", "tls")):
        return "credentials in the URL (user@)"
    query = urlsplit(value).query if "://" in value else ""
    for key, _ in parse_qsl(query, keep_blank_values=True):
        if key.lower() in SECRET_KEYS:
            return f"a secret query parameter ({key}=)"
    m2 = _KV.search(value)
    if m2 and ("://" in value or " " in value or value.lower().startswith(m2["key"].lower())):
        return f"a secret parameter ({m2['key']}=)"
    return None


def credential_problems(flat: Iterable[tuple[str, Any]]) -> list[str]:
    """For each (key path, value) that carries a credential: ``"<key>: holds <what>; ..."``."""
    problems = []
    for key, value in flat:
        if not isinstance(value, str):
            continue
        what = _has_credential(value)
        if what:
            hint = ENV_HINTS.get(key) or (_TARGET_HINT if _TARGET_URL.match(key) else "an environment variable")
            problems.append(f"{key}: holds {what}; credentials never go in the config: remove it and set {hint}")
    return problems
