"""The ``custom`` plan: runs an operator-installed function from ``engine_polars/custom/``.

Plan: ``{kind: "custom", name, params: {...}, filter}``. ``name`` must be a module the process
discovered in the plugin folder (never code from the request). The partial is whatever the
plugin's ``run`` returned, with types normalised to what the merge reads: integers → Int64,
floats → Float64, String/Categorical/Enum → String, Boolean and Null kept; anything else is a
``CUSTOM_BAD_RESULT``. With ``MERGE`` ``top-n`` keyed by exactly ``["user_id"]`` (the shard key:
each user's rows are on one shard) the shard sums by key and keeps only the rows whose ``by`` is
at least as good as its n-th best (ties kept, so the key tie-break happens once, in the merge).

Errors: ``CUSTOM_BAD_PARAMS`` (the plugin raised :class:`engine_polars.custom.BadParams`),
``CUSTOM_FAILED`` (it raised anything else), ``CUSTOM_BAD_RESULT`` (it returned something the
declared merge cannot use).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import reject_unknown_keys, require_key
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars._utils.log import log
from engine_polars.errors import BadPlan, EngineError
from engine_polars import metadata
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.limits import CUSTOM_MAX_PARAMS_BYTES, CUSTOM_MAX_TOP_N

__all__ = ["KIND", "CustomPlan", "MergeRule", "Plugin", "discover", "listing", "parse", "plugins", "run"]

KIND = "custom"
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


class CustomBadParams(EngineError):
    code = "CUSTOM_BAD_PARAMS"


class CustomFailed(EngineError):
    code = "CUSTOM_FAILED"


class CustomBadResult(EngineError):
    code = "CUSTOM_BAD_RESULT"


@dataclass(frozen=True)
class MergeRule:
    kind: str  # "concat" | "sum" | "top-n"
    keys: tuple[str, ...] = ()
    by: str | None = None
    n: int | None = None
    order: str = "desc"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "concat":
            return {"kind": "concat"}
        if self.kind == "sum":
            return {"kind": "sum", "keys": list(self.keys)}
        return {"kind": "top-n", "by": self.by, "n": self.n, "order": self.order, "keys": list(self.keys)}


@dataclass(frozen=True)
class Plugin:
    name: str
    run: Callable[[pl.LazyFrame, dict[str, Any]], Any]
    merge: MergeRule
    doc: str


@dataclass(frozen=True)
class CustomPlan:
    kind: ClassVar[str] = KIND
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    filter: Filter = field(default_factory=Filter)


def parse_merge(raw: object) -> MergeRule:
    """``MERGE`` of a plugin module; raises ValueError saying what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"`MERGE` must be a dict; got {type(raw).__name__}")
    kind = raw.get("kind")
    allowed = {"concat": ("kind",), "sum": ("kind", "keys"), "top-n": ("kind", "keys", "by", "n", "order")}
    if kind not in allowed:
        raise ValueError(f"`MERGE.kind` must be `concat`, `sum` or `top-n`; got {kind!r}")
    for key in raw:
        if key not in allowed[kind]:
            raise ValueError(f"unknown key `MERGE.{key}` for kind `{kind}`")
    if kind == "concat":
        return MergeRule("concat")
    keys = raw.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
        raise ValueError("`MERGE.keys` must be a list of distinct column names")
    if kind == "sum":
        return MergeRule("sum", tuple(keys))
    by, n, order = raw.get("by"), raw.get("n"), raw.get("order", "desc")
    if not keys:
        raise ValueError("`MERGE.keys` of a top-n must name at least one column")
    if not isinstance(by, str) or not by or by in keys:
        raise ValueError("`MERGE.by` must be a column name that is not a key")
    if not is_integer(n) or not 1 <= n <= CUSTOM_MAX_TOP_N:
        raise ValueError(f"`MERGE.n` must be an integer in 1..{CUSTOM_MAX_TOP_N}; got {n!r}")
    if order not in ("desc", "asc"):
        raise ValueError(f"`MERGE.order` must be `desc` or `asc`; got {order!r}")
    return MergeRule("top-n", tuple(keys), by, n, order)


_PLUGINS: dict[str, Plugin] | None = None
_ERRORS: list[dict[str, str]] = []


def discover(package: str = "engine_polars.custom") -> tuple[dict[str, Plugin], list[dict[str, str]]]:
    """Imports every public module of the plugin package; a module that fails to import or
    declares a bad ``run``/``MERGE`` is left out and reported, never fatal."""
    found: dict[str, Plugin] = {}
    errors: list[dict[str, str]] = []
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        name = info.name
        if name.startswith("_"):
            continue
        if not NAME.match(name) or info.ispkg:
            errors.append({"module": name, "message": "module names must match [a-z][a-z0-9_]{0,63} and be single files"})
            continue
        try:
            module = importlib.import_module(f"{package}.{name}")
            run_fn = getattr(module, "run", None)
            if not callable(run_fn):
                raise ValueError("module defines no callable `run(frame, params)`")
            merge = parse_merge(getattr(module, "MERGE", None))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a broken plugin must not take the shard down
            errors.append({"module": name, "message": f"{type(exc).__name__}: {exc}"})
            continue
        doc = (module.__doc__ or "").strip().split("\n", 1)[0]
        found[name] = Plugin(name, run_fn, merge, doc)
    for e in errors:
        log(f"custom plugin `{e['module']}` not loaded: {e['message']}")
    return found, errors


def plugins() -> dict[str, Plugin]:
    """The plugins of this process, discovered once on first use."""
    global _PLUGINS, _ERRORS
    if _PLUGINS is None:
        _PLUGINS, _ERRORS = discover()
    return _PLUGINS


def listing() -> dict[str, Any]:
    """Fields of the ``custom_list`` op's reply."""
    found = plugins()
    return {
        "plugins": [{"name": p.name, "merge": p.merge.to_json(), "doc": p.doc} for p in found.values()],
        "errors": list(_ERRORS),
    }


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> CustomPlan:
    reject_unknown_keys(obj, ("kind", "name", "params", "filter"), path)
    name = require_key(obj, "name", path)
    if not isinstance(name, str) or not NAME.match(name):
        raise BadPlan(f"`{path}.name` must match [a-z_][a-z0-9_]{{0,63}}; got {json_type(name)}")
    if name not in plugins():
        raise BadPlan(f"unknown custom function `{name}`")
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadPlan(f"`{path}.params` must be an object; got {json_type(params)}")
    size = len(json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > CUSTOM_MAX_PARAMS_BYTES:
        raise BadPlan(f"`{path}.params` is {size} bytes as JSON; at most {CUSTOM_MAX_PARAMS_BYTES}")
    return CustomPlan(name=name, params=params, filter=parse_filter(obj.get("filter"), f"{path}.filter"))


def _normalised(df: pl.DataFrame, name: str) -> pl.DataFrame:
    casts: list[pl.Expr] = []
    for col, dtype in df.schema.items():
        if dtype.is_integer():
            casts.append(pl.col(col).cast(pl.Int64))
        elif dtype.is_float():
            casts.append(pl.col(col).cast(pl.Float64))
        elif isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
            casts.append(pl.col(col).cast(pl.String))
        elif isinstance(dtype, (pl.Boolean, pl.Null)):
            casts.append(pl.col(col))
        else:
            raise CustomBadResult(
                f"custom function `{name}` returned column `{col}` of type `{dtype}`; "
                "expected strings, numbers, booleans or nulls (cast it)"
            )
    return df.select(casts)


def _checked(df: pl.DataFrame, plugin: Plugin) -> pl.DataFrame:
    rule, name = plugin.merge, plugin.name
    for key in rule.keys:
        if key not in df.columns:
            raise CustomBadResult(f"custom function `{name}` returned no key column `{key}` (MERGE keys {list(rule.keys)})")
    if rule.kind != "concat":
        for col, dtype in df.schema.items():
            if col not in rule.keys and not (dtype.is_numeric() or dtype == pl.Null):
                raise CustomBadResult(
                    f"custom function `{name}`: non-key column `{col}` has type `{dtype}`; "
                    f"MERGE `{rule.kind}` sums every non-key column, so it must be numeric"
                )
    if rule.kind == "top-n" and rule.by not in df.columns:
        raise CustomBadResult(f"custom function `{name}` returned no `{rule.by}` column (MERGE by)")
    return df


def _shard_top(df: pl.DataFrame, rule: MergeRule) -> pl.DataFrame:
    """By the shard key only: sum per user, keep every row at least as good as the n-th."""
    keys = list(rule.keys)
    values = [c for c in df.columns if c not in keys]
    summed = df.group_by(keys).agg(
        pl.when(pl.col(c).count() > 0).then(pl.col(c).sum()).alias(c) for c in values
    )
    assert rule.by is not None and rule.n is not None
    ranked = summed.filter(pl.col(rule.by).is_not_null()).sort(rule.by, descending=rule.order == "desc")
    if ranked.height <= rule.n:
        return summed
    cut = ranked[rule.by][rule.n - 1]
    keep = pl.col(rule.by) >= cut if rule.order == "desc" else pl.col(rule.by) <= cut
    return summed.filter(keep)


def plugin_frame(frame: pl.LazyFrame) -> pl.LazyFrame:
    """The events as the plugin guide promises them: String ``event_type``/``user_id`` and a
    ``metadata`` JSON text column (rebuilt only if the plugin reads it; ``with_dimensions``
    still reads ``metadata.<key>`` from its column). Casting here keeps a plugin's ``is_in``
    from inserting strings into the store's dictionaries."""
    schema = frame.collect_schema()
    extra = [] if "metadata" in schema else [metadata.text(schema).alias("metadata")]
    return frame.with_columns(pl.col("event_type").cast(pl.String), pl.col("user_id").cast(pl.String), *extra)


def run(plan: CustomPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    plugin = plugins()[plan.name]
    params = json.loads(json.dumps(plan.params))  # the plugin gets its own copy
    try:
        out = plugin.run(plugin_frame(apply_filter(frame, plan.filter)), params)
        if isinstance(out, pl.LazyFrame):
            out = out.collect()
    except (KeyboardInterrupt,):
        raise
    except BaseException as exc:  # SystemExit too: a plugin must not stop the shard
        from engine_polars.custom import BadParams

        if isinstance(exc, BadParams):
            raise CustomBadParams(f"custom function `{plan.name}`: {exc}") from None
        text = str(exc)
        raise CustomFailed(f"custom function `{plan.name}` failed: {type(exc).__name__}{': ' + text if text else ''}") from None
    if not isinstance(out, pl.DataFrame):
        raise CustomBadResult(f"custom function `{plan.name}` returned {type(out).__name__}; expected a polars DataFrame")
    df = _checked(_normalised(out, plan.name), plugin)
    if plugin.merge.kind == "top-n" and plugin.merge.keys == ("user_id",):
        df = _shard_top(df, plugin.merge)
    return df
