#!/usr/bin/env python3
"""Static checks for the ITSM deployment files (k8s/ and deploy/). No network, no cluster.

    python3 deploy/check_manifests.py          # from anywhere; paths are relative to the repo

Prints one line per failure and exits 1 if there is any, 0 otherwise. Needs PyYAML.

What it verifies:
  * every *.yaml / *.yml under k8s/ and deploy/ parses;
  * k8s/base, resolved through its kustomization.yaml files (resources and `labels`): every
    file it names exists and every YAML file under k8s/base is used; for each of the eight
    services (seven practices and identity) a Deployment, ClusterIP and headless Service, HPA
    (base bounds per service: identity 2..4), PDB and migration Job, with the right args, gRPC
    probes naming the right service, config and secret wiring, security context, resources,
    labels and selectors (the Services never select the migration pod), and
    terminationGracePeriodSeconds above ITSM_SHUTDOWN_DELAY + ITSM_SHUTDOWN_GRACE;
  * the itsm-config ConfigMap has every setting (auth issuer, audience, clock skew and
    ITSM_IDENTITY_ADDR=http://identity:50051 included), only keys the binary knows (a typo in
    an environment variable is silently ignored by the binary), no empty auth value, and never
    ITSM_AUTH_HS256_SECRET (a secret); the base sets no ITSM_AUTH_JWKS (overlays do);
  * every Deployment gets ITSM_IDENTITY_ADDR; ITSM_AUTH_HS256_SECRET, wherever it appears,
    comes from Secret itsm-auth (key ITSM_AUTH_HS256_SECRET), never a literal; no env var is
    listed twice in one container;
  * each overlay under k8s/overlays names files that exist and sets the `itsm` image (prod:
    a pinned tag or digest);
  * when `kustomize` or `kubectl` is on PATH (set ITSM_CHECK_RENDER=0 to skip): base and
    overlays render, the per-service checks hold on the result (patches and overlay config
    included), HPA/PDB patches hit real fields, everything lands in one namespace, dev runs one
    pod per service with JSON logs, prod keeps more incidents pods than the base; in every
    overlay each Deployment's container has exactly one of ITSM_AUTH_JWKS /
    ITSM_AUTH_HS256_SECRET (each migration Job at most one); prod names an issuer other than
    the development default, its JWKS is an https:// URL or an absolute file path, and nothing
    in prod mentions ITSM_AUTH_HS256_SECRET or Secret itsm-auth;
  * deploy/compose.yaml runs `itsm serve <service>` for all eight on host ports 50051..50058
    with a gRPC healthcheck and its own database, which deploy/postgres/init.sql creates; every
    serving container has ITSM_IDENTITY_ADDR=http://identity:50051 and exactly one of
    ITSM_AUTH_JWKS / ITSM_AUTH_HS256_SECRET (migrations at most one), the latter from
    ${ITSM_AUTH_HS256_SECRET:-...} with a default of at least 32 characters;
  * deploy/Dockerfile has the agreed builder, runtime, user, port and entrypoint.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    print("check_manifests: PyYAML is required (pip install pyyaml)")
    sys.exit(1)

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "k8s"
BASE = K8S / "base"
DEPLOY = REPO / "deploy"

# service -> (gRPC service, HPA (minReplicas, maxReplicas) in base, compose host port).
# The seven practices and the identity platform service (API keys); each runs `itsm serve <name>`
# and `itsm migrate <name>` against a database of its own.
SERVICES = {
    "incidents": ("itsm.incidents.v1.IncidentService", (2, 20), 50051),
    "problems": ("itsm.problems.v1.ProblemService", (2, 10), 50052),
    "changes": ("itsm.changes.v1.ChangeService", (2, 10), 50053),
    "requests": ("itsm.requests.v1.RequestService", (2, 10), 50054),
    "cmdb": ("itsm.cmdb.v1.CmdbService", (2, 10), 50055),
    "sla": ("itsm.sla.v1.SlaService", (2, 10), 50056),
    "knowledge": ("itsm.knowledge.v1.KnowledgeService", (2, 10), 50057),
    "identity": ("itsm.identity.v1.IdentityService", (2, 4), 50058),
}
GRPC_PORT = 50051
CONFIG_KEYS = (
    "ITSM_GRPC_ADDR",
    "ITSM_LOG_FORMAT",
    "ITSM_LOG",
    "ITSM_REQUEST_TIMEOUT",
    "ITSM_SHUTDOWN_GRACE",
    "ITSM_SHUTDOWN_DELAY",
    "ITSM_AUTH_ISSUER",
    "ITSM_AUTH_AUDIENCE",
    "ITSM_AUTH_CLOCK_SKEW",
    "ITSM_IDENTITY_ADDR",
)
# Authentication (README.md, "Security"): exactly one token scheme per serving container.
JWKS_VAR = "ITSM_AUTH_JWKS"
HS256_VAR = "ITSM_AUTH_HS256_SECRET"
AUTH_SECRET = "itsm-auth"  # Secret holding HS256_VAR; development (dev overlay, compose) only
IDENTITY_ADDR = f"http://identity:{GRPC_PORT}"
DEV_ISSUER = "itsm"  # the binary's default issuer, which `itsm token` signs for
# Every setting the binary reads (libs/platform/src/config.rs, KNOWN_KEYS), as ITSM_<KEY>.
# Read from that file when it is there; this copy is the fallback. The binary ignores unknown
# environment variables, so a misspelt key in the ConfigMap would silently do nothing.
CONFIG_RS = REPO / "libs" / "platform" / "src" / "config.rs"
KNOWN_KEYS_FALLBACK = (
    "grpc_addr", "log", "log_format", "request_timeout", "shutdown_delay", "shutdown_grace",
    "database_url", "migrate_on_start", "redis_url", "data_dir", "auth_issuer", "auth_audience",
    "auth_jwks", "auth_hs256_secret", "auth_clock_skew", "auth_roles_claim", "auth_groups_claim",
    "identity_addr",
)
TEMPLATED_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

failures: list[str] = []


def fail(where: object, msg: str) -> None:
    failures.append(f"{where}: {msg}")


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def dig(obj, *keys, default=None):
    for key in keys:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
        if obj is None:
            return default
    return obj


def duration_seconds(text: object) -> float | None:
    """humantime-style durations as used by ITSM_*: "25s", "500ms", "1m30s"."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    s = str(text).strip().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|sec|min|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def selects(selector: dict | None, labels: dict | None) -> bool:
    """True if a matchLabels-style selector (non-empty) matches the labels."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


@functools.lru_cache(maxsize=None)
def known_env_vars() -> frozenset[str]:
    keys: tuple[str, ...] | list[str] = KNOWN_KEYS_FALLBACK
    try:
        m = re.search(r"const\s+KNOWN_KEYS\s*:[^=]*=\s*&\[(.*?)\];", CONFIG_RS.read_text(), re.DOTALL)
        if m:
            keys = re.findall(r'"([a-z0-9_]+)"', m.group(1)) or keys
    except OSError:
        pass
    return frozenset({"ITSM_" + k.upper() for k in keys} | {"ITSM_CONFIG"})


# --------------------------------------------------------------------------- YAML parsing


def parse_all() -> None:
    files = sorted(
        p for root in (K8S, DEPLOY) if root.is_dir()
        for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
    )
    if not files:
        fail("k8s/, deploy/", "no YAML files found")
    for path in files:
        try:
            with path.open() as f:
                list(yaml.safe_load_all(f))
        except yaml.YAMLError as e:
            fail(rel(path), "does not parse: " + " ".join(str(e).split()))


def load_docs(path: Path) -> list[dict]:
    try:
        with path.open() as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError):
        return []  # reported by parse_all or by the caller


# --------------------------------------------------------------------------- kustomize (base)


class Obj:
    def __init__(self, doc: dict, source: Path):
        self.doc = doc
        self.source = source

    @property
    def kind(self) -> str:
        return self.doc.get("kind", "")

    @property
    def name(self) -> str:
        return dig(self.doc, "metadata", "name", default="")

    def where(self) -> str:
        return f"{rel(self.source)}: {self.kind}/{self.name}"


def add_labels(doc: dict, pairs: dict, templates: bool, selectors: bool) -> None:
    doc.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if doc.get("kind") in TEMPLATED_KINDS:
        if templates or selectors:
            tmpl = doc.setdefault("spec", {}).setdefault("template", {})
            tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if selectors and doc.get("kind") != "Job":
            doc["spec"].setdefault("selector", {}).setdefault("matchLabels", {}).update(pairs)
    if selectors and doc.get("kind") == "Service":
        doc.setdefault("spec", {}).setdefault("selector", {}).update(pairs)


def resolve_kustomization(directory: Path, used: set[Path]) -> list[Obj]:
    """Resources of a kustomization, recursively, with its label transformers applied."""
    kfile = next((directory / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                  if (directory / n).is_file()), None)
    if kfile is None:
        fail(rel(directory), "no kustomization.yaml")
        return []
    used.add(kfile.resolve())
    docs = load_docs(kfile)
    kust = docs[0] if docs and isinstance(docs[0], dict) else {}
    objs: list[Obj] = []
    for entry in kust.get("resources") or []:
        target = (directory / str(entry)).resolve()
        if target.is_dir():
            objs.extend(resolve_kustomization(target, used))
        elif target.is_file():
            used.add(target)
            objs.extend(Obj(d, target) for d in load_docs(target) if isinstance(d, dict))
        else:
            fail(rel(kfile), f"resource {entry!r} does not exist")
    for spec in kust.get("labels") or []:
        for o in objs:
            add_labels(o.doc, spec.get("pairs") or {}, bool(spec.get("includeTemplates")),
                       bool(spec.get("includeSelectors")))
    if kust.get("commonLabels"):
        for o in objs:
            add_labels(o.doc, kust["commonLabels"], True, True)
    return objs


def index(objs: list[Obj]) -> dict[tuple[str, str], list[Obj]]:
    out: dict[tuple[str, str], list[Obj]] = {}
    for o in objs:
        out.setdefault((o.kind, o.name), []).append(o)
    return out


def one(idx: dict, kind: str, name: str, where: str) -> Obj | None:
    found = idx.get((kind, name), [])
    if not found:
        fail(where, f"no {kind} named {name!r}")
        return None
    if len(found) > 1:
        fail(where, f"{len(found)} {kind} objects named {name!r}")
    return found[0]


# --------------------------------------------------------------------------- per-object checks


def shutdown_budget(idx: dict, where: str) -> float | None:
    cm = one(idx, "ConfigMap", "itsm-config", where)
    data = dig(cm.doc, "data", default={}) if cm else {}
    delay = duration_seconds(data.get("ITSM_SHUTDOWN_DELAY"))
    grace = duration_seconds(data.get("ITSM_SHUTDOWN_GRACE"))
    if delay is None or grace is None:
        return None
    return delay + grace


def check_configmap(idx: dict, where: str, base: bool = False) -> None:
    cm = one(idx, "ConfigMap", "itsm-config", where)
    if not cm:
        return
    data = cm.doc.get("data") or {}
    for key in CONFIG_KEYS:
        if key not in data:
            fail(cm.where(), f"missing {key}")
    known = known_env_vars()
    for key in data:
        if key not in known:
            fail(cm.where(), f"{key} is not a setting the binary reads (typo?): it would be ignored")
    if HS256_VAR in data or HS256_VAR in (cm.doc.get("binaryData") or {}):
        fail(cm.where(), f"{HS256_VAR} is a secret: it belongs in Secret {AUTH_SECRET}, not the ConfigMap")
    for key, value in data.items():
        if (key.startswith("ITSM_AUTH_") or key == "ITSM_IDENTITY_ADDR") and not str(value or "").strip():
            fail(cm.where(), f"{key} is empty: the services refuse to start (exit 2); remove it or set it")
    if base and JWKS_VAR in data:
        fail(cm.where(), f"the base sets {JWKS_VAR} ({data[JWKS_VAR]!r}): the overlays name the identity provider")
    jwks = str(data.get(JWKS_VAR) or "")
    if jwks and not (jwks.startswith(("https://", "http://")) or jwks.startswith("/")):
        fail(cm.where(), f"{JWKS_VAR} {jwks!r} is neither an http(s):// URL nor an absolute file path")
    if "ITSM_AUTH_CLOCK_SKEW" in data and duration_seconds(data["ITSM_AUTH_CLOCK_SKEW"]) is None:
        fail(cm.where(), f"ITSM_AUTH_CLOCK_SKEW {data['ITSM_AUTH_CLOCK_SKEW']!r} is not a duration like 60s")
    ident = str(data.get("ITSM_IDENTITY_ADDR") or "")
    if ident and not re.fullmatch(rf"https?://identity(\.[a-z0-9.-]+)?:{GRPC_PORT}/?", ident):
        fail(cm.where(), f"ITSM_IDENTITY_ADDR {ident!r} is not the identity Service ({IDENTITY_ADDR})")
    if data.get("ITSM_LOG_FORMAT") not in (None, "json", "text"):
        fail(cm.where(), f"ITSM_LOG_FORMAT is {data['ITSM_LOG_FORMAT']!r}, want json or text")
    for key in ("ITSM_REQUEST_TIMEOUT", "ITSM_SHUTDOWN_GRACE", "ITSM_SHUTDOWN_DELAY"):
        if key in data and duration_seconds(data[key]) is None:
            fail(cm.where(), f"{key} {data[key]!r} is not a duration like 25s")
    addr = str(data.get("ITSM_GRPC_ADDR", ""))
    if addr and not addr.endswith(f":{GRPC_PORT}"):
        fail(cm.where(), f"ITSM_GRPC_ADDR {addr!r} does not listen on {GRPC_PORT}")


def find_container(o: Obj, verb: str) -> dict | None:
    containers = dig(o.doc, "spec", "template", "spec", "containers", default=[])
    match = [c for c in containers if (c.get("args") or [None])[0] == verb]
    if not match:
        fail(o.where(), f"no container with args starting with {verb!r}")
        return None
    if len(match) > 1:
        fail(o.where(), f"{len(match)} containers run {verb!r}")
    return match[0]


def check_secret_env(o: Obj, c: dict, practice: str, redis_required: bool) -> None:
    env = {e.get("name"): e for e in c.get("env") or []}
    want = [("ITSM_DATABASE_URL", f"itsm-{practice}-db", True), ("ITSM_REDIS_URL", "itsm-redis", redis_required)]
    for var, secret, required in want:
        ref = dig(env.get(var), "valueFrom", "secretKeyRef")
        if ref is None:
            from_secret = any(dig(s, "secretRef", "name") == secret for s in c.get("envFrom") or [])
            if not from_secret and required:
                fail(o.where(), f"{var} does not come from Secret {secret}")
            continue
        if ref.get("name") != secret or ref.get("key") != var:
            fail(o.where(), f"{var} comes from {ref.get('name')}/{ref.get('key')}, want {secret}/{var}")
        if required and ref.get("optional"):
            fail(o.where(), f"{var} must not be optional")
    if not any(dig(s, "configMapRef", "name") == "itsm-config" for s in c.get("envFrom") or []):
        fail(o.where(), "envFrom does not include ConfigMap itsm-config")


def container_env(idx: dict, c: dict) -> set[str]:
    """Names of the environment variables a container gets: env entries, and envFrom of a
    ConfigMap found in idx (its data keys) or of Secret itsm-auth (assumed to hold HS256_VAR)."""
    names = {e.get("name") for e in c.get("env") or [] if e.get("name")}
    for s in c.get("envFrom") or []:
        prefix = s.get("prefix") or ""
        cm_name = dig(s, "configMapRef", "name")
        cm = idx.get(("ConfigMap", cm_name), [None])[0] if cm_name else None
        if cm:
            names |= {prefix + str(k) for k in (cm.doc.get("data") or {})}
        if dig(s, "secretRef", "name") == AUTH_SECRET:
            names.add(prefix + HS256_VAR)
    return names


def check_auth_env(idx: dict, o: Obj, c: dict, serving: bool, overlay: bool) -> None:
    """Auth wiring of one container: `serving` for a Deployment, `overlay` for a rendered overlay
    (the base alone names no identity provider, so it has no token scheme yet)."""
    entries = [e.get("name") for e in c.get("env") or []]
    dups = sorted({n for n in entries if n and entries.count(n) > 1})
    if dups:
        fail(o.where(), f"env lists {dups} more than once (the last one silently wins)")
    known = known_env_vars()
    for n in entries:
        if n and n.startswith("ITSM_") and n not in known:
            fail(o.where(), f"env {n} is not a setting the binary reads (typo?): it would be ignored")
    for e in c.get("env") or []:
        if e.get("name") != HS256_VAR:
            continue
        ref = dig(e, "valueFrom", "secretKeyRef")
        if not ref or ref.get("name") != AUTH_SECRET or ref.get("key") != HS256_VAR:
            fail(o.where(), f"{HS256_VAR} must come from Secret {AUTH_SECRET} key {HS256_VAR} "
                            "(secretKeyRef), never a literal or another secret")
    names = container_env(idx, c)
    if serving and "ITSM_IDENTITY_ADDR" not in names:
        fail(o.where(), f"gets no ITSM_IDENTITY_ADDR: API keys could not be verified ({IDENTITY_ADDR})")
    if not overlay:
        return
    schemes = sorted(n for n in (JWKS_VAR, HS256_VAR) if n in names)
    if len(schemes) > 1:
        fail(o.where(), f"sets both {JWKS_VAR} and {HS256_VAR}: the binary refuses to start (exit 2)")
    elif serving and not schemes:
        fail(o.where(), f"has no way to authenticate callers: set exactly one of {JWKS_VAR} "
                        f"(ConfigMap) or {HS256_VAR} (Secret {AUTH_SECRET}, dev only); exit 2 otherwise")


def mentions(node: object, needles: tuple[str, ...]) -> bool:
    """True if any key or string value anywhere in node equals one of needles."""
    if isinstance(node, dict):
        return any(k in needles or mentions(v, needles) for k, v in node.items())
    if isinstance(node, list):
        return any(mentions(v, needles) for v in node)
    return isinstance(node, str) and node in needles


def check_hardening(o: Obj, c: dict) -> None:
    pod = dig(o.doc, "spec", "template", "spec", default={})
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        fail(o.where(), "runAsNonRoot is not set")
    for sc in (psc, csc):
        if sc.get("runAsUser") == 0:
            fail(o.where(), "runAsUser is 0")
    if csc.get("readOnlyRootFilesystem") is not True:
        fail(o.where(), "readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        fail(o.where(), "allowPrivilegeEscalation is not false")
    if "ALL" not in (dig(csc, "capabilities", "drop", default=[]) or []):
        fail(o.where(), "capabilities are not dropped (drop: [ALL])")
    res = c.get("resources") or {}
    for section in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if not dig(res, section, r):
                fail(o.where(), f"resources.{section}.{r} is not set")


def check_labels(o: Obj, labels: dict | None, practice: str, name: str, what: str) -> None:
    labels = labels or {}
    want = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "itsm",
        "app.kubernetes.io/component": practice,
    }
    for k, v in want.items():
        if labels.get(k) != v:
            fail(o.where(), f"{what} label {k} is {labels.get(k)!r}, want {v!r}")


def check_deployment(dep: Obj, practice: str, budget: float | None, rendered: bool) -> dict:
    svc = SERVICES[practice][0]
    spec = dep.doc.get("spec") or {}
    pod_labels = dig(spec, "template", "metadata", "labels", default={})
    check_labels(dep, dig(dep.doc, "metadata", "labels"), practice, practice, "metadata")
    check_labels(dep, pod_labels, practice, practice, "pod template")
    sel = dig(spec, "selector", "matchLabels")
    if not selects(sel, pod_labels):
        fail(dep.where(), f"selector {sel} does not match the pod template labels")
    c = find_container(dep, "serve")
    if c is None:
        return pod_labels
    if c.get("args") != ["serve", practice]:
        fail(dep.where(), f"args are {c.get('args')}, want ['serve', {practice!r}]")
    if not rendered and c.get("image") != "itsm":
        fail(dep.where(), f"image is {c.get('image')!r}, want 'itsm' (overlays set name and tag)")
    ports = [p for p in c.get("ports") or [] if p.get("containerPort") == GRPC_PORT]
    if not ports or ports[0].get("name") != "grpc":
        fail(dep.where(), f"no containerPort {GRPC_PORT} named grpc")
    ready = dig(c, "readinessProbe", "grpc")
    if not ready:
        fail(dep.where(), "readinessProbe is not a gRPC probe")
    else:
        if ready.get("port") != GRPC_PORT:
            fail(dep.where(), f"readinessProbe.grpc.port is {ready.get('port')}, want {GRPC_PORT}")
        if ready.get("service") != svc:
            fail(dep.where(), f"readinessProbe.grpc.service is {ready.get('service')!r}, want {svc!r}")
    live = dig(c, "livenessProbe", "grpc")
    if not live:
        fail(dep.where(), "livenessProbe is not a gRPC probe")
    else:
        if live.get("port") != GRPC_PORT:
            fail(dep.where(), f"livenessProbe.grpc.port is {live.get('port')}, want {GRPC_PORT}")
        if live.get("service", "") != "":
            fail(dep.where(), f"livenessProbe.grpc.service is {live.get('service')!r}, want '' (overall)")
    check_secret_env(dep, c, practice, redis_required=True)
    check_hardening(dep, c)
    pod = dig(spec, "template", "spec", default={})
    tgp = pod.get("terminationGracePeriodSeconds")
    if not isinstance(tgp, int):
        fail(dep.where(), "terminationGracePeriodSeconds is not set")
    elif budget is not None and not tgp > budget:
        fail(dep.where(), f"terminationGracePeriodSeconds {tgp} is not above "
                          f"ITSM_SHUTDOWN_DELAY + ITSM_SHUTDOWN_GRACE = {budget:g}s")
    tsc = pod.get("topologySpreadConstraints") or []
    if not tsc:
        fail(dep.where(), "no topologySpreadConstraints")
    for t in tsc:
        if not selects(dig(t, "labelSelector", "matchLabels"), pod_labels):
            fail(dep.where(), f"topology spread on {t.get('topologyKey')} does not select its own pods")
    return pod_labels


def check_services(idx: dict, practice: str, pod_labels: dict, job_labels: dict | None, loc: str) -> None:
    for name, headless in ((practice, False), (f"{practice}-headless", True)):
        s = one(idx, "Service", name, loc)
        if not s:
            continue
        spec = s.doc.get("spec") or {}
        if spec.get("type", "ClusterIP") != "ClusterIP":
            fail(s.where(), f"type is {spec.get('type')}, want ClusterIP")
        if headless and spec.get("clusterIP") != "None":
            fail(s.where(), "clusterIP is not None (headless)")
        if not headless and spec.get("clusterIP") == "None":
            fail(s.where(), "is headless; the main Service needs a cluster IP")
        ports = [p for p in spec.get("ports") or [] if p.get("port") == GRPC_PORT]
        if not ports:
            fail(s.where(), f"no port {GRPC_PORT}")
        else:
            p = ports[0]
            if p.get("name") != "grpc":
                fail(s.where(), f"port {GRPC_PORT} is named {p.get('name')!r}, want 'grpc'")
            if p.get("appProtocol") != "grpc":
                fail(s.where(), f"appProtocol is {p.get('appProtocol')!r}, want 'grpc'")
            if p.get("targetPort") not in ("grpc", GRPC_PORT, None):
                fail(s.where(), f"targetPort is {p.get('targetPort')!r}")
        sel = spec.get("selector")
        if not selects(sel, pod_labels):
            fail(s.where(), f"selector {sel} does not match the Deployment's pods")
        if job_labels is not None and selects(sel, job_labels):
            fail(s.where(), f"selector {sel} also matches the migration Job's pod")


def check_hpa(h: Obj, practice: str, base: bool) -> None:
    spec = h.doc.get("spec") or {}
    if h.doc.get("apiVersion") != "autoscaling/v2":
        fail(h.where(), f"apiVersion is {h.doc.get('apiVersion')}, want autoscaling/v2")
    ref = spec.get("scaleTargetRef") or {}
    if (ref.get("kind"), ref.get("name")) != ("Deployment", practice):
        fail(h.where(), f"scales {ref.get('kind')}/{ref.get('name')}, want Deployment/{practice}")
    lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
    if base:
        want_min, want_max = SERVICES[practice][1]
        if lo != want_min:
            fail(h.where(), f"minReplicas is {lo}, want {want_min}")
        if hi != want_max:
            fail(h.where(), f"maxReplicas is {hi}, want {want_max}")
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
        fail(h.where(), f"minReplicas {lo} / maxReplicas {hi} are not 1 <= min <= max")
    cpu = [m for m in spec.get("metrics") or [] if dig(m, "resource", "name") == "cpu"]
    target = dig(cpu, 0, "resource", "target", default={})
    if target.get("type") != "Utilization" or target.get("averageUtilization") != 70:
        fail(h.where(), f"CPU target is {target}, want Utilization 70")


def check_pdb(p: Obj, pod_labels: dict) -> None:
    spec = p.doc.get("spec") or {}
    if p.doc.get("apiVersion") != "policy/v1":
        fail(p.where(), f"apiVersion is {p.doc.get('apiVersion')}, want policy/v1")
    if spec.get("minAvailable") != 1:
        fail(p.where(), f"minAvailable is {spec.get('minAvailable')!r}, want 1")
    if not selects(dig(spec, "selector", "matchLabels"), pod_labels):
        fail(p.where(), "selector does not match the Deployment's pods")


def check_job(j: Obj, practice: str, rendered: bool) -> dict:
    if j.doc.get("apiVersion") != "batch/v1":
        fail(j.where(), f"apiVersion is {j.doc.get('apiVersion')}, want batch/v1")
    pod_labels = dig(j.doc, "spec", "template", "metadata", "labels", default={})
    check_labels(j, pod_labels, practice, f"{practice}-migrate", "pod template")
    restart = dig(j.doc, "spec", "template", "spec", "restartPolicy")
    if restart not in ("Never", "OnFailure"):
        fail(j.where(), f"restartPolicy is {restart!r}, want Never or OnFailure")
    c = find_container(j, "migrate")
    if c is not None:
        if c.get("args") != ["migrate", practice]:
            fail(j.where(), f"args are {c.get('args')}, want ['migrate', {practice!r}]")
        if not rendered and c.get("image") != "itsm":
            fail(j.where(), f"image is {c.get('image')!r}, want 'itsm'")
        check_secret_env(j, c, practice, redis_required=False)
        check_hardening(j, c)
    return pod_labels


def check_practices(idx: dict, where: str, rendered: bool, base: bool) -> None:
    budget = shutdown_budget(idx, where)
    for practice in SERVICES:
        loc = f"{where}/{practice}" if not rendered else f"{where[:-1]}, {practice})"
        dep = one(idx, "Deployment", practice, loc)
        pod_labels = check_deployment(dep, practice, budget, rendered) if dep else {}
        job = one(idx, "Job", f"{practice}-migrate", loc)
        job_labels = check_job(job, practice, rendered) if job else None
        overlay = rendered and not base
        for o, verb, serving in ((dep, "serve", True), (job, "migrate", False)):
            for c in dig(o.doc, "spec", "template", "spec", "containers", default=[]) if o else []:
                if (c.get("args") or [None])[0] == verb:
                    check_auth_env(idx, o, c, serving, overlay)
        if dep and job and selects(dig(dep.doc, "spec", "selector", "matchLabels"), job_labels):
            fail(dep.where(), "selector also matches the migration Job's pod")
        if rendered and not base and dep:
            for o in (dep, job):
                if not o:
                    continue
                for c in dig(o.doc, "spec", "template", "spec", "containers", default=[]):
                    if c.get("image") in (None, "", "itsm"):
                        fail(o.where(), f"image {c.get('image')!r} was not set by the overlay")
        check_services(idx, practice, pod_labels, job_labels, loc)
        hpa = one(idx, "HorizontalPodAutoscaler", practice, loc)
        if hpa:
            check_hpa(hpa, practice, base)
        pdb = one(idx, "PodDisruptionBudget", practice, loc)
        if pdb and base:
            check_pdb(pdb, pod_labels)
        elif pdb and not selects(dig(pdb.doc, "spec", "selector", "matchLabels"), pod_labels):
            fail(pdb.where(), "selector does not match the Deployment's pods")


# --------------------------------------------------------------------------- base and overlays


def check_base() -> None:
    if not BASE.is_dir():
        fail("k8s/base", "missing")
        return
    used: set[Path] = set()
    objs = resolve_kustomization(BASE, used)
    for path in sorted(BASE.rglob("*")):
        if path.suffix in (".yaml", ".yml") and path.resolve() not in used:
            fail(rel(path), "is not referenced by any kustomization.yaml (dead file)")
    idx = index(objs)
    for (kind, name), found in idx.items():
        if len(found) > 1:
            fail(rel(found[0].source), f"{kind}/{name} is defined {len(found)} times")
    check_configmap(idx, "k8s/base", base=True)
    check_practices(idx, "k8s/base", rendered=False, base=True)


def check_overlays() -> list[Path]:
    overlays = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    names = {p.name for p in overlays}
    for want in ("dev", "prod"):
        if want not in names:
            fail("k8s/overlays", f"no {want} overlay")
    for o in overlays:
        kfile = o / "kustomization.yaml"
        kust = (load_docs(kfile) or [{}])[0] or {}
        for entry in kust.get("resources") or []:
            if not (o / str(entry)).exists():
                fail(rel(kfile), f"resource {entry!r} does not exist")
        for patch in kust.get("patches") or kust.get("patchesStrategicMerge") or []:
            path = patch.get("path") if isinstance(patch, dict) else patch
            if isinstance(path, str) and not (o / path).is_file():
                fail(rel(kfile), f"patch {path!r} does not exist")
        image = next((i for i in kust.get("images") or [] if i.get("name") == "itsm"), None)
        if image is None:
            fail(rel(kfile), "does not set the itsm image (images: - name: itsm)")
        elif o.name == "prod" and not image.get("digest") and image.get("newTag") in (None, "", "latest"):
            fail(rel(kfile), f"prod image tag is {image.get('newTag')!r}: pin a release tag or digest")
    return overlays


def render_tool() -> list[str] | None:
    if os.environ.get("ITSM_CHECK_RENDER", "1") == "0":
        return None
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


# Fields a JSON patch in an overlay may touch; kustomize's "replace" silently adds a misspelt
# path, which the API server would then drop with only a warning.
KNOWN_SPEC_FIELDS = {
    "HorizontalPodAutoscaler": {"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"},
    "PodDisruptionBudget": {"minAvailable", "maxUnavailable", "selector", "unhealthyPodEvictionPolicy"},
}
KNOWN_RESOURCE_FIELDS = {"requests", "limits", "claims"}


def check_known_fields(idx: dict) -> None:
    for (kind, _), objs in idx.items():
        for o in objs:
            allowed = KNOWN_SPEC_FIELDS.get(kind)
            extra = set(o.doc.get("spec") or {}) - allowed if allowed else set()
            if extra:
                fail(o.where(), f"unknown spec field(s) {sorted(extra)}")
            for c in dig(o.doc, "spec", "template", "spec", "containers", default=[]) or []:
                extra = set(c.get("resources") or {}) - KNOWN_RESOURCE_FIELDS
                if extra:
                    fail(o.where(), f"unknown resources field(s) {sorted(extra)}")


def check_dev(idx: dict, where: str) -> None:
    """dev: one pod per service, JSON logs."""
    for practice in SERVICES:
        h = idx.get(("HorizontalPodAutoscaler", practice), [None])[0]
        if h and (dig(h.doc, "spec", "minReplicas"), dig(h.doc, "spec", "maxReplicas")) != (1, 1):
            fail(h.where(), "dev runs one pod per service: want minReplicas 1, maxReplicas 1")
        p = idx.get(("PodDisruptionBudget", practice), [None])[0]
        if p and dig(p.doc, "spec", "minAvailable") not in (0, None):
            fail(p.where(), "with one pod, a PDB demanding minAvailable >= 1 blocks every drain")
    cm = idx.get(("ConfigMap", "itsm-config"), [None])[0]
    if cm and dig(cm.doc, "data", "ITSM_LOG_FORMAT") != "json":
        fail(cm.where(), "dev sets ITSM_LOG_FORMAT=json")


def check_prod(idx: dict, where: str, docs: list[dict]) -> None:
    """prod: more incidents pods than the base; tokens from a real identity provider only."""
    for d in docs:
        if mentions(d, (HS256_VAR, AUTH_SECRET)):
            o = Obj(d, Path(where))
            fail(o.where(), f"mentions {HS256_VAR} or Secret {AUTH_SECRET}: prod verifies tokens "
                            f"with its identity provider's JWKS, never the development secret")
    cm = idx.get(("ConfigMap", "itsm-config"), [None])[0]
    data = dig(cm.doc, "data", default={}) if cm else {}
    if cm and data.get("ITSM_AUTH_ISSUER", DEV_ISSUER) == DEV_ISSUER:
        fail(cm.where(), f"prod ITSM_AUTH_ISSUER is {DEV_ISSUER!r}, the development default: "
                         "set your identity provider's issuer")
    jwks = str(data.get(JWKS_VAR) or "")
    if cm and jwks and not (jwks.startswith("https://") or jwks.startswith("/")):
        fail(cm.where(), f"prod {JWKS_VAR} {jwks!r} is not an https:// URL or an absolute file path")
    h = idx.get(("HorizontalPodAutoscaler", "incidents"), [None])[0]
    if h and not (dig(h.doc, "spec", "minReplicas", default=0) > 2
                  and dig(h.doc, "spec", "maxReplicas", default=0) >= SERVICES["incidents"][1][1]):
        fail(h.where(), "prod keeps more incidents pods than the base (minReplicas > 2, maxReplicas >= 20)")


def check_rendered(overlays: list[Path]) -> None:
    tool = render_tool()
    if tool is None:
        why = "ITSM_CHECK_RENDER=0" if os.environ.get("ITSM_CHECK_RENDER") == "0" else "no kustomize/kubectl on PATH"
        print(f"check_manifests: note: {why}, rendered checks skipped", file=sys.stderr)
        return
    # Problems already reported for the source files show up again in every rendering:
    # report only what rendering adds (the same message about the same object is dropped).
    seen = {f.split(": ", 1)[-1] for f in failures}
    start = len(failures)
    for directory in [BASE, *overlays]:
        where = f"{rel(directory)} (rendered)"
        try:
            out = subprocess.run([*tool, str(directory)], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            fail(where, f"{' '.join(tool)} failed: {e}")
            continue
        if out.returncode != 0:
            msg = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            fail(where, f"{' '.join(tool)} failed: {msg}")
            continue
        try:
            docs = [d for d in yaml.safe_load_all(out.stdout) if isinstance(d, dict)]
        except yaml.YAMLError as e:
            fail(where, f"rendered output does not parse: {e}")
            continue
        idx = index([Obj(d, Path(where)) for d in docs])
        check_configmap(idx, where, base=directory == BASE)
        check_practices(idx, where, rendered=True, base=directory == BASE)
        check_known_fields(idx)
        if directory.name == "dev":
            check_dev(idx, where)
        if directory.name == "prod":
            check_prod(idx, where, docs)
        if directory != BASE:
            namespaces = {dig(d, "metadata", "namespace") for d in docs if d.get("kind") != "Namespace"}
            if None in namespaces or len(namespaces) != 1:
                fail(where, f"objects are not all in one namespace: {sorted(map(str, namespaces))}")
    fresh = [f for f in failures[start:] if f.split(": ", 1)[-1] not in seen]
    del failures[start:]
    for f in fresh:
        if f not in failures:
            failures.append(f)


# --------------------------------------------------------------------------- deploy/


def check_compose() -> None:
    path = DEPLOY / "compose.yaml"
    where = rel(path)
    docs = load_docs(path)
    if not docs:
        fail(where, "missing or empty")
        return
    services = docs[0].get("services") or {}
    for name, image in (("postgres", "postgres:16"), ("redis", "redis:7")):
        svc = services.get(name)
        if not svc:
            fail(where, f"no {name} service")
            continue
        if not str(svc.get("image", "")).startswith(image):
            fail(where, f"{name} image is {svc.get('image')!r}, want {image}")
        if not svc.get("healthcheck"):
            fail(where, f"{name} has no healthcheck")
    init_sql = DEPLOY / "postgres" / "init.sql"
    sql = init_sql.read_text() if init_sql.is_file() else ""
    if not sql:
        fail(rel(init_sql), "missing or empty")
    mounted = any("init.sql" in str(v) and "docker-entrypoint-initdb.d" in str(v)
                  for v in (services.get("postgres") or {}).get("volumes") or [])
    if not mounted:
        fail(where, "postgres does not mount postgres/init.sql into /docker-entrypoint-initdb.d")
    for practice, (grpc_service, _, host_port) in SERVICES.items():
        svc = services.get(practice)
        if not svc:
            fail(where, f"no service {practice!r}")
            continue
        if svc.get("command") != ["serve", practice]:
            fail(where, f"{practice}: command is {svc.get('command')}, want ['serve', {practice!r}]")
        if "build" not in svc or "dockerfile" not in str(svc.get("build")):
            fail(where, f"{practice}: is not built from deploy/Dockerfile")
        ports = [str(p) for p in svc.get("ports") or []]
        if not any(p.endswith(f"{host_port}:{GRPC_PORT}") for p in ports):
            fail(where, f"{practice}: ports {ports}, want host {host_port} -> {GRPC_PORT}")
        test = " ".join(map(str, dig(svc, "healthcheck", "test", default=[]) or []))
        if grpc_service not in test:
            fail(where, f"{practice}: healthcheck does not check {grpc_service}")
        env = svc.get("environment") or {}
        db = str(env.get("ITSM_DATABASE_URL", "")) if isinstance(env, dict) else ""
        if not (db.startswith("postgres://") and db.endswith(f"/itsm_{practice}")):
            fail(where, f"{practice}: ITSM_DATABASE_URL {db!r} is not postgres://.../itsm_{practice}")
        if isinstance(env, dict) and not str(env.get("ITSM_REDIS_URL", "")).startswith("redis://"):
            fail(where, f"{practice}: ITSM_REDIS_URL is not a redis:// URL")
        check_compose_auth(where, practice, env, serving=True)
        if isinstance((services.get(f"{practice}-migrate") or {}).get("environment"), dict):
            check_compose_auth(where, f"{practice}-migrate", services[f"{practice}-migrate"]["environment"],
                               serving=False)
        if not re.search(rf"CREATE\s+DATABASE\s+itsm_{practice}\b", sql, re.IGNORECASE):
            fail(rel(init_sql), f"does not create database itsm_{practice}")
        migrate = services.get(f"{practice}-migrate")
        if not migrate or migrate.get("command") != ["migrate", practice]:
            fail(where, f"{practice}-migrate: missing or not ['migrate', {practice!r}]")
        elif dig(svc, "depends_on", f"{practice}-migrate", "condition") != "service_completed_successfully":
            fail(where, f"{practice}: does not wait for {practice}-migrate to complete")
    all_ports = [str(p) for s in services.values() for p in (s.get("ports") or [])]
    host = [p.rsplit(":", 1)[0] for p in all_ports]
    if len(host) != len(set(host)):
        fail(where, f"host ports are not unique: {all_ports}")


def check_compose_auth(where: str, name: str, env: object, serving: bool) -> None:
    """Every itsm container in compose: ITSM_IDENTITY_ADDR and exactly one token scheme (a
    migration at most one); the HS256 secret from the environment, with a long enough default."""
    if not isinstance(env, dict):
        fail(where, f"{name}: environment is not a mapping")
        return
    if serving and str(env.get("ITSM_IDENTITY_ADDR", "")) != IDENTITY_ADDR:
        fail(where, f"{name}: ITSM_IDENTITY_ADDR is {env.get('ITSM_IDENTITY_ADDR')!r}, want {IDENTITY_ADDR!r}")
    schemes = [n for n in (JWKS_VAR, HS256_VAR) if n in env]
    if len(schemes) > 1:
        fail(where, f"{name}: sets both {JWKS_VAR} and {HS256_VAR}: the binary refuses to start (exit 2)")
    elif serving and not schemes:
        fail(where, f"{name}: no way to authenticate callers: set {HS256_VAR} (or {JWKS_VAR})")
    if HS256_VAR in env:
        value = str(env[HS256_VAR])
        m = re.fullmatch(r"\$\{ITSM_AUTH_HS256_SECRET(?::-(?P<default>[^}]*)|:\?[^}]*)\}", value)
        if not m:
            fail(where, f"{name}: {HS256_VAR} must come from the environment: "
                        "${ITSM_AUTH_HS256_SECRET:-<dev default>}, not a fixed value")
        elif m.group("default") is not None and len(m.group("default")) < 32:
            fail(where, f"{name}: the default {HS256_VAR} has {len(m.group('default'))} characters, "
                        "want at least 32 (exit 2 otherwise)")


def check_dockerfile() -> None:
    path = DEPLOY / "Dockerfile"
    if not path.is_file():
        fail(rel(path), "missing")
        return
    text = path.read_text()
    expect = {
        r"rust:1\.95-bookworm": "builder image rust:1.95-bookworm",
        r"cargo build --release --locked -p itsm\b": "cargo build --release --locked -p itsm",
        r"debian:bookworm-slim": "runtime image debian:bookworm-slim",
        r"\bca-certificates\b": "ca-certificates in the runtime image",
        r"(?m)^USER\s+(?!0\b|root\b)\S+": "a non-root USER",
        r'(?m)^ENTRYPOINT\s+\["itsm"\]': 'ENTRYPOINT ["itsm"]',
        r"(?m)^EXPOSE\s+50051\b": "EXPOSE 50051",
    }
    for pattern, what in expect.items():
        if not re.search(pattern, text):
            fail(rel(path), f"lacks {what}")
    if re.search(r"(?m)^EXPOSE\s+9090\b", text):
        fail(rel(path), "exposes 9090, which the binary does not serve yet")


def main() -> int:
    parse_all()
    check_base()
    overlays = check_overlays()
    check_rendered(overlays)
    check_compose()
    check_dockerfile()
    for line in failures:
        print(line)
    if failures:
        print(f"check_manifests: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("check_manifests: ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
