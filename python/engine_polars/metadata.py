"""Event metadata held as typed columns, not JSON text.

An event's ``metadata`` arrives as the JSON text the ingest router wrote (``JSON.stringify`` of
an object). The store keeps it as:

* ``__meta:<key>``, one column per extracted top-level key: ``Categorical`` for string values
  (a :class:`~engine_polars.dictionary.Dictionary`, ``UInt8`` codes widening to ``UInt16``),
  ``Float64`` for numbers, ``Boolean`` for booleans; null where the event lacks the key (or holds
  JSON ``null``);
* ``__meta_shape``, ``Categorical``: the object's keys in order, as a JSON array text
  (``["plan","page"]``), so the object is rebuilt with its keys in their order and ``null``
  values where it had them. Null when the event has no metadata, and null when the shape is
  *implied* (:func:`_implied`): the object has at least one key, no ``null`` value, and its keys
  in the store's *key order* (:attr:`MetadataCodec.order`: every key in the order it was first
  registered, append-only, so a key's position never changes), so its keys are exactly the
  row's non-null ``__meta:`` columns in key order. Producers write their keys in a fixed order
  of their own (bench:rss's ``{"plan":…,"page":…}``), which is the order the store first
  registers them in, so their objects are implied. The store's frame lists the ``__meta:``
  columns in key order (``EventStore.frame``: a chunk's own column order changes when chunks
  are concatenated, and after a restart) and :func:`text` renders in the order of its schema.
  The order is kept in the segments' manifest (``segments.py``): a segment is reachable only
  through a manifest written after it, so its implied rows are rendered with an order that
  extends the one they were encoded with; a manifest from before key orders starts it as the
  code-point order of its segments' keys (the rule of the implied shapes then, and a key set
  that carries every shape reads the same in any order). ``{}`` keeps its shape (``[]``:
  otherwise it would read as no metadata). A chunk whose every shape is implied has no
  ``__meta_shape`` column at all (~1.1 bytes per event saved);
* ``__meta_raw``, ``String``: the original text of the events that are *not* encoded, present
  only in chunks holding such events.

An event's object is encoded only when every value is a string, a number, a boolean or null,
each key already has (or can take) a column of its value's type, there is room (at most
:data:`MAX_KEYS` keys and 65,535 shapes per store, 65,535 string values per key), and both
round trips are exact: the text rebuilt from the columns (:func:`render`, JavaScript's number
formatting) is byte for byte the text that arrived, and each ``metadata.<key>`` dimension read
from the column (:func:`dimension`) equals what ``json_path_match`` gives on the text. Anything
else (a nested value, a key that was a number and now is a string, a key beyond the bound, a
number whose text JavaScript would write differently) keeps its whole text in ``__meta_raw``;
answers are the same either way, only the memory differs.

The store decides per distinct text (a batch's texts are de-duplicated first), so a batch of
65,536 events with a hundred different metadata objects parses a hundred JSON texts, and it
remembers the decisions of the last :data:`DECISIONS_KEPT` texts across batches: a decision never
changes once made (a key's type is fixed by its first value, keys are only added), and a live
feed's small batches repeat the same objects (the bench's 500-event appends: ~270 distinct texts
each, 7.7 → 4 ms per append).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from engine_polars.dictionary import Dictionary

__all__ = [
    "MAX_KEYS",
    "PREFIX",
    "RAW",
    "SHAPE",
    "MetadataCodec",
    "dimension",
    "is_metadata_column",
    "js_number",
    "render",
    "text",
]

RAW = "__meta_raw"
SHAPE = "__meta_shape"
PREFIX = "__meta:"
#: Most keys extracted into columns per store; later keys keep their events' text whole.
MAX_KEYS = 64
#: Decisions remembered across batches (text → pairs or raw), dropped all at once when full.
DECISIONS_KEPT = 4096
#: `metadata.<key>` names a dimension only for keys like this (src/kinds/schemas.ts).
DIMENSION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def is_metadata_column(name: str) -> bool:
    return name in (RAW, SHAPE) or name.startswith(PREFIX)


def js_number(x: float) -> str:
    """``String(x)`` in JavaScript (ECMAScript Number::toString): the shortest digits that
    round-trip (Python's ``repr`` finds the same ones), laid out the JavaScript way.

    >>> [js_number(v) for v in (100.0, 1e21, 1.5e-7, 0.0001, -0.0)]
    ['100', '1e+21', '1.5e-7', '0.0001', '0']
    """
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number(-x)
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else "Infinity"
    mantissa, _, exp = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    stripped = digits.lstrip("0")
    n = len(whole) + (int(exp) if exp else 0) - (len(digits) - len(stripped))
    s = stripped.rstrip("0")
    k = len(s)
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    sign = "+" if e >= 0 else "-"
    return (s if k == 1 else s[0] + "." + s[1:]) + "e" + sign + str(abs(e))


def _json_string(s: str) -> str:
    # Python escapes exactly what JSON.stringify escapes (", \, and U+0000..U+001F, with the
    # same short forms and lower-case \u00xx) when ensure_ascii is off.
    return json.dumps(s, ensure_ascii=False)


def _value_text(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _json_string(v)
    return js_number(float(v))


def render(pairs: Iterable[tuple[str, Any]]) -> str:
    """The JSON text ``JSON.stringify`` writes for a flat object of these (key, value) pairs."""
    return "{" + ",".join(_json_string(k) + ":" + _value_text(v) for k, v in pairs) + "}"


class _Pairs(list):  # type: ignore[type-arg]
    """A decoded JSON object (its key/value pairs, in order)."""


def _parse_flat(text: str) -> list[tuple[str, Any]] | None:
    """The object's pairs with numbers as floats, or None when it cannot be encoded."""
    try:
        obj = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, _Pairs):
        return None
    pairs: list[tuple[str, Any]] = []
    for key, v in obj:
        if isinstance(v, list):  # nested object (_Pairs) or array
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            try:
                v = float(v)
            except OverflowError:
                return None
        pairs.append((key, v))
    if len({k for k, _ in pairs}) != len(pairs):
        return None
    return pairs


def _kind(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "str"
    return "num"


def _typed_dimension(name: str, dtype: pl.DataType) -> pl.Expr:
    """A value column as the string its ``metadata.<key>`` dimension is."""
    c = pl.col(name)
    if dtype == pl.Boolean:
        return pl.when(c).then(pl.lit("true")).when(c.not_()).then(pl.lit("false")).otherwise(pl.lit(None, pl.String))
    if dtype == pl.Float64:
        integral = (c == c.floor()) & (c.abs() < 2.0**53)
        return pl.when(integral).then(c.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(c.cast(pl.String))
    return c.cast(pl.String)


def dimension(key: str, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The ``metadata.<key>`` dimension (a String: string values as they are, numbers and
    booleans as their JSON text, null when missing) over a frame of this ``schema``: a plain
    frame with a ``metadata`` JSON text column, or the store's encoded columns."""
    path = f"$.{key}"
    if not any(is_metadata_column(name) for name in schema):
        if "metadata" in schema:
            return pl.col("metadata").str.json_path_match(path)
        return pl.lit(None, dtype=pl.String)
    parts: list[pl.Expr] = []
    column = PREFIX + key
    if column in schema:
        parts.append(_typed_dimension(column, schema[column]))
    if RAW in schema:
        parts.append(pl.col(RAW).str.json_path_match(path))
    if not parts:
        return pl.lit(None, dtype=pl.String)
    return parts[0] if len(parts) == 1 else pl.coalesce(parts)


def text(schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The metadata JSON text of each row, exactly as it arrived (null: no metadata).

    On the store's frame it is rebuilt in Python for the rows it is evaluated on, so use it
    after the rows are cut down (a page, the top anomalies), not over a whole shard. The
    ``__meta:`` columns must be in ``schema`` in the store's key order, as ``EventStore.frame``
    lists them (filters, sorts, slices and added columns keep it): an implied shape is the
    row's non-null columns in that order."""
    if "metadata" in schema:
        return pl.col("metadata")
    columns = [name for name in schema if is_metadata_column(name)]
    if not columns:
        return pl.lit(None, dtype=pl.String)
    return pl.struct(columns).map_batches(_render_batch, return_dtype=pl.String, is_elementwise=True)


def _render_batch(packed: pl.Series) -> pl.Series:
    df = packed.struct.unnest()
    raw = df[RAW] if RAW in df.columns else None
    encoded = [c for c in df.columns if c != RAW]
    out = pl.Series("metadata", [None] * df.height, dtype=pl.String)
    if encoded:
        cols = df.select(encoded)
        # A row without a shape whose columns hold something has the implied shape (the
        # non-null columns in key order: the columns' order here, see `text`); one holding
        # nothing has no metadata (or is raw).
        by_key = [c[len(PREFIX) :] for c in encoded if c.startswith(PREFIX)]
        # Rebuild each distinct (shape, values) once, then spread to the rows.
        distinct = cols.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in encoded)).unique()
        shapes: dict[str, list[str]] = {}
        texts = []
        for row in distinct.iter_rows(named=True):
            shape = row.get(SHAPE)
            if shape is None:
                keys = [k for k in by_key if row[PREFIX + k] is not None]
            else:
                keys = shapes.get(shape)  # type: ignore[assignment]
                if keys is None:
                    keys = shapes[shape] = json.loads(shape)
            texts.append(render((k, row.get(PREFIX + k)) for k in keys))
        distinct = distinct.with_columns(pl.Series("__text", texts, dtype=pl.String))
        out = cols.join(distinct, on=encoded, how="left", nulls_equal=True, maintain_order="left")["__text"]
    if raw is not None:
        out = raw.to_frame("r").with_columns(out.alias("t")).select(pl.coalesce("r", "t")).to_series()
    return out.alias("metadata")


def _implied(pairs: list[tuple[str, Any]], position: Mapping[str, int]) -> bool:
    """Whether an encoded object's shape goes without saying: at least one key (``{}`` would
    read as no metadata), no ``null`` value (its column is null, as for a missing key), and the
    keys in increasing ``position`` (the key order: the order :func:`_render_batch` gives the
    non-null columns). Every key of such an object is registered, so has a position."""
    if not pairs or any(v is None for _, v in pairs):
        return False
    at = [position.get(k, -1) for k, _ in pairs]
    return at[0] >= 0 and all(a < b for a, b in zip(at, at[1:]))


def _null_where(values: pl.Series, mask: pl.Series) -> pl.Series:
    return pl.select(pl.when(mask).then(None).otherwise(values)).to_series().alias(values.name)


class MetadataCodec:
    """One store's extracted keys and dictionaries; see the module doc."""

    def __init__(self) -> None:
        #: key → "str" | "num" | "bool"
        self.kinds: dict[str, str] = {}
        self.strings: dict[str, Dictionary] = {}
        self.shapes = Dictionary(widest=pl.UInt16())
        #: the key order: every key registered, in the order first registered (append-only, so
        #: a key's position never changes); implied shapes are rendered in it
        self.order: list[str] = []
        self.position: dict[str, int] = {}
        self._decided: dict[str, tuple[list[tuple[str, Any]] | None, str | None]] = {}
        #: text → whether it is kept whole for a dimension mismatch (:meth:`_dimension_mismatch`),
        #: remembered like the decisions: it depends only on the text and its keys' types, which
        #: never change once set
        self._mismatch: dict[str, bool] = {}

    def dtype_of(self, key: str) -> pl.DataType:
        kind = self.kinds[key]
        if kind == "str":
            return self.strings[key].dtype
        return pl.Float64() if kind == "num" else pl.Boolean()

    def dictionary(self, column: str) -> Dictionary | None:
        """The dictionary encoding a metadata column (shape or a string key), if any."""
        if column == SHAPE:
            return self.shapes
        if column.startswith(PREFIX):
            return self.strings.get(column[len(PREFIX) :])
        return None

    def extend_order(self, keys: Iterable[str]) -> None:
        """Appends the keys not in the key order yet, in this order."""
        for k in keys:
            if k not in self.position:
                self.position[k] = len(self.order)
                self.order.append(k)

    def adopt(self, column: str, dtype: pl.DataType) -> None:
        """Registers a key column read back from a segment (its kind from its dtype; its place
        in the key order is the manifest's, see ``EventStore.open_dir``)."""
        if not column.startswith(PREFIX):
            return
        key = column[len(PREFIX) :]
        if key in self.kinds:
            return
        if isinstance(dtype, pl.Categorical) or dtype == pl.String:
            self.kinds[key] = "str"
            self.strings[key] = Dictionary(widest=pl.UInt16())
        else:
            self.kinds[key] = "num" if dtype == pl.Float64 else "bool"

    def encode(self, texts: pl.Series) -> tuple[pl.DataFrame, set[str]]:
        """The metadata columns of a batch (one row per text; only the columns some row uses)
        and the names of columns whose dictionary widened (already-held chunks must recode them)."""
        widened: set[str] = set()
        # Each row's distinct text as a code (a batch-local Categorical: one hash per row): the
        # columns are built once per distinct text and gathered by these codes at the end. (A
        # `unique` and then a join of the rows against the distinct texts hashed every row twice:
        # 5 + 21 of the metadata's ~44 ns per row on 20,000-row batches.)
        local = texts.cast(pl.Categorical(pl.Categories.random()))
        codes = local.to_physical()
        distinct = local.dtype.categories.to_series()  # type: ignore[union-attr]  # code order
        if distinct.len() == 0:  # no metadata in the batch: no metadata columns
            return pl.DataFrame(), widened
        texts_list = distinct.to_list()
        # Decided in order of first appearance (the codes' order when the cast ran in row order,
        # but not counted on): the first value of a key decides its column's type, and the first
        # object with a key sets its place in the key order.
        appearance = codes.drop_nulls().unique(maintain_order=True).to_list()
        decided: list[tuple[list[tuple[str, Any]] | None, str | None]] = [(None, None)] * len(texts_list)
        for code in appearance:
            decided[code] = self._decided_once(texts_list[code])
        keys: list[str] = []
        for code in appearance:
            for k, _ in decided[code][0] or ():
                if k not in keys:
                    keys.append(k)
        columns: dict[str, list[Any]] = {k: [] for k in keys}
        shapes: list[str | None] = []
        for pairs, shape in decided:
            values = dict(pairs) if pairs is not None else {}
            shapes.append(shape)
            for k in keys:
                columns[k].append(values.get(k))
        plain: dict[str, pl.Series] = {
            "__text": distinct,
            "__raw": pl.Series([pairs is None for pairs, _ in decided], dtype=pl.Boolean),
        }
        # Only when some object's shape is not implied (the bench's {"plan":…}: never).
        with_shape = any(shape is not None for shape in shapes)
        if with_shape:
            plain[SHAPE] = pl.Series(shapes, dtype=pl.String)
        for k in keys:
            kind = self.kinds.get(k)
            dtype = pl.String if kind in (None, "str") else pl.Float64 if kind == "num" else pl.Boolean
            plain[PREFIX + k] = pl.Series(columns[k], dtype=dtype)
        d = pl.DataFrame(plain)
        known = [self._mismatch.get(t) for t in texts_list]
        if any(m is None for m in known):
            bad = self._dimension_mismatch(d, keys)
            if len(self._mismatch) + len(texts_list) > DECISIONS_KEPT:
                self._mismatch.clear()
            self._mismatch.update(zip(texts_list, bad.to_list()))
        else:  # every text seen before: no query (~0.07 ms per append)
            bad = pl.Series(known, dtype=pl.Boolean)
        d.drop_in_place("__raw")
        # Each eager frame operation runs a query (~0.1 ms), a fixed cost of every append: the
        # texts kept whole are nulled out only when there are some.
        any_bad = bool(bad.any())
        # Dictionary-encode the string columns and the shape; a full dictionary refuses rows.
        for name in [SHAPE] * with_shape + [PREFIX + k for k in keys if self.kinds.get(k) == "str"]:
            dictionary = self.dictionary(name)
            assert dictionary is not None
            values, grew, refused = dictionary.encode(_null_where(d[name], bad) if any_bad else d[name])
            d.replace_column(d.get_column_index(name), values.alias(name))
            if refused.any():
                bad = bad | refused
                any_bad = True
            if grew:
                widened.add(name)
        if any_bad:
            encoded_cols = [c for c in d.columns if c != "__text"]
            d = d.with_columns(
                *(pl.when(bad).then(None).otherwise(pl.col(c)).alias(c) for c in encoded_cols),
                pl.when(bad).then(pl.col("__text")).otherwise(None).alias(RAW),
            )
        d.drop_in_place("__text")
        rows = d.select(pl.all().gather(codes))  # a null code (no metadata): a null row
        for c in [c for c in rows.columns if rows[c].null_count() == rows.height]:
            rows.drop_in_place(c)
        return rows, widened

    def _decided_once(self, t: str) -> tuple[list[tuple[str, Any]] | None, str | None]:
        """:meth:`_decide` and the shape text of its pairs, remembered: deciding a text again
        would give the same answer."""
        try:
            return self._decided[t]
        except KeyError:
            pass
        pairs = self._decide(t)
        # The key order only grows, so the answer stays true.
        shape = None if pairs is None or _implied(pairs, self.position) else json.dumps([k for k, _ in pairs], ensure_ascii=False, separators=(",", ":"))
        if len(self._decided) >= DECISIONS_KEPT:
            self._decided.clear()
        self._decided[t] = (pairs, shape)
        return pairs, shape

    def _decide(self, t: str) -> list[tuple[str, Any]] | None:
        """The pairs to encode for this text, registering new keys, or None for raw."""
        pairs = _parse_flat(t)
        if pairs is None:
            return None
        try:
            if render(pairs) != t:
                return None
        except (ValueError, UnicodeError):
            return None
        new: dict[str, str] = {}
        for k, v in pairs:
            kind = _kind(v)
            if kind is None:
                continue
            have = self.kinds.get(k, new.get(k))
            if have is None:
                new[k] = kind
            elif have != kind:
                return None
        if len(self.kinds) + len(new) > MAX_KEYS:
            return None
        for k, kind in new.items():
            self.kinds[k] = kind
            if kind == "str":
                self.strings[k] = Dictionary(widest=pl.UInt16())
        # In the text's order: the first object a producer sends sets its keys' order.
        self.extend_order(new)
        return pairs

    def _dimension_mismatch(self, d: pl.DataFrame, keys: list[str]) -> pl.Series:
        """Rows whose typed value would answer a ``metadata.<key>`` dimension differently
        from ``json_path_match`` on the text (then the text is kept instead)."""
        checks = []
        for k in keys:
            if not DIMENSION_KEY.match(k):
                continue
            column = PREFIX + k
            typed = _typed_dimension(column, d.schema[column])
            checks.append(~typed.eq_missing(pl.col("__text").str.json_path_match(f"$.{k}")))
        raw = d["__raw"]
        if not checks:
            return raw
        return d.select(pl.any_horizontal(checks).fill_null(False)).to_series() | raw
