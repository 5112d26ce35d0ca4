"""An aggregate's finished answer rows, as JSON text, made by the shard itself.

When ``user_id`` is a group key no two shards ever hold the same group (routing is by user), so
the merge has nothing to combine: it only interleaves the shards' rows in key order. The shard
then finishes its groups into answer rows (the moments into ``m_sum``, ``m_mean``, ...,
``m_stddev``, ``window`` into ``window_start`` and ``window_end``) and writes each row's JSON
text; the merge (``src/merge/aggregate-rows.ts``) copies the texts into the answer without
decoding them. A by-user answer has hundreds of thousands of rows, and building and serializing
them in JavaScript took most of its time.

The text is the one ``JSON.stringify`` writes for the row the merge would have made:

* keys in ``groupBy`` order (strings escaped by polars' JSON encoder, which escapes exactly as
  ``JSON.stringify`` does), then ``count``, then each metric's ``m_count``, then each metric's
  five moments;
* when every moment is finite and no key's string holds ``.0,`` or ``.0}``, polars' JSON encoder
  writes the whole row and the ``.0`` of whole doubles is then cut (~0.1 s less for 680,000
  rows); otherwise the row is concatenated from its pieces;
* numbers as JavaScript writes them. polars writes the same shortest round-trip digits, plus
  ``.0`` on whole numbers (dropped here), and switches to exponent notation at other
  magnitudes: they agree for ``1e-5 <= |x| < 1e15``. A row with a float outside that range
  (zero included: polars writes ``-0.0`` where JavaScript writes ``0``) is flagged
  ``__reparse``, and the merge re-serializes it with ``JSON.stringify(JSON.parse(text))``; the
  text is valid JSON either way and holds the exact doubles;
* a sum, mean or standard deviation that overflowed is the string ``"Infinity"``,
  ``"-Infinity"`` or ``"NaN"`` (docs/api/limits.md), a non-finite min or max is ``null``
  (what ``JSON.stringify`` writes for it).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from engine_polars.dictionary import category_strings

__all__ = ["PLAIN_MAX", "PLAIN_MIN", "STATS", "answer_columns", "answer_rows", "column_bytes", "json_number"]

#: The statistics an answer row has per metric (after ``m_count``), in this order
#: (``AGGREGATE_STATS`` in src/merge/aggregate.ts); a plan's ``stats`` names some of them.
STATS = ("sum", "mean", "min", "max", "stddev")

#: Floats in [PLAIN_MIN, PLAIN_MAX) in magnitude have the same text in polars (less a trailing
#: ``.0``) and JavaScript; test/vectors/json-numbers.json holds JavaScript's texts to check it.
PLAIN_MIN = 1e-5
PLAIN_MAX = 1e15

_NON_FINITE = {"inf": '"Infinity"', "-inf": '"-Infinity"', "NaN": '"NaN"'}


def json_number(x: pl.Expr, *, non_finite: str | None = None) -> pl.Expr:
    """The JSON text of a Float64 (``null`` text for a null), as JavaScript writes it for
    ``PLAIN_MIN <= |x| < PLAIN_MAX``. ``non_finite``: ``"name"`` writes infinities and NaN as the
    strings ``"Infinity"``, ``"-Infinity"``, ``"NaN"``; ``"null"`` writes them as ``null``; None
    assumes there are none (their text is then not JSON)."""
    text = x.cast(pl.String).str.strip_suffix(".0")
    if non_finite == "name":
        text = pl.when(x.is_finite()).then(text).otherwise(x.cast(pl.String).replace_strict(_NON_FINITE, default=None))
    elif non_finite == "null":
        text = pl.when(x.is_finite()).then(text)
    return text.fill_null("null")


#: polars writes a whole double with a trailing ``.0``; in a row encoded whole that is the only
#: ``.0`` before a ``,`` or ``}`` unless a key's string holds one (:func:`_keys_hold`).
_WHOLE_FLOAT = r"\.0([,}])"


def _reparse_flag(name: str) -> pl.Expr:
    """A finished moment outside the range where polars' digits are JavaScript's."""
    x = pl.col(f"__{name}")
    # A standard deviation is never -0 (sqrt of max(0, …) / n), so its 0 needs no rewrite.
    return (x != 0) & _outside_plain(x) if name.endswith("_stddev") else _outside_plain(x)


def _keys_hold(frame: pl.DataFrame, group_by: Sequence[str], pattern: str) -> bool:
    """Whether a string key of ``frame`` (a dictionary's strings when Categorical) matches ``pattern``."""
    for k in group_by:
        if k == "window":
            continue
        dtype = frame.schema[k]
        strings = category_strings(dtype) if isinstance(dtype, pl.Categorical) else frame[k].cast(pl.String)
        # one search over the strings joined by \x01 (which no pattern here matches): per string,
        # 680,000 user ids took ~37 ms, joined ~12
        if strings.to_frame().select(pl.first().str.join("\x01").str.contains(pattern)).item():
            return True
    return False


def _outside_plain(x: pl.Expr) -> pl.Expr:
    a = x.abs()
    return ~((a >= PLAIN_MIN) & (a < PLAIN_MAX))


def answer_rows(
    grouped: pl.DataFrame, group_by: Sequence[str], metrics: Sequence[str], window_ms: int | None, stats: Sequence[str] = STATS
) -> pl.DataFrame:
    """``grouped`` (keys as String / ``window_start`` Int64, ``count``, per metric ``<m>__count``,
    ``__sum``, ``__min``, ``__max``, ``__mean``, ``__m2``; sorted) → the keys, ``__row`` (the
    answer row's JSON text) and ``__reparse`` (Boolean: the merge must re-serialize the text).
    Per metric only the moments ``stats`` names are written (``grouped`` needs only theirs)."""
    keys = _answer_keys(group_by, window_ms)
    finished = [f for m in metrics for f in _moments(m, stats)]
    frame = grouped.with_columns([e.alias(f"__{name}") for name, e, _ in finished])
    all_finite = not finished or bool(
        frame.select(pl.all_horizontal(pl.col(f"__{name}").is_finite().fill_null(True).all() for name, _, _ in finished)).item()
    )
    flags = [_reparse_flag(name) for name, _, _ in finished]
    reparse = pl.any_horizontal(flags).fill_null(False) if flags else pl.lit(False)
    key_columns = [pl.col(k).cast(pl.String) if k != "window" else pl.col("window_start") for k in group_by]
    if all_finite and not _keys_hold(frame, group_by, _WHOLE_FLOAT):
        out = frame.select(*key_columns, _encoded_row(keys, metrics, finished).alias("__row"), reparse.alias("__reparse"))
        return out.with_columns(_cut_whole_dots(out["__row"], frame, finished))
    row = _concatenated_row(keys, metrics, finished, all_finite)
    return frame.select(*key_columns, row.alias("__row"), reparse.alias("__reparse"))


def _encoded_row(keys: list[pl.Expr], metrics: Sequence[str], finished: list[tuple[str, pl.Expr, str]]) -> pl.Expr:
    """The row's text encoded whole by polars (~0.1 s less per 680,000 rows than
    :func:`_concatenated_row`), whole doubles still with their ``.0`` (:func:`_cut_whole_dots`).
    Only when every finished moment is finite (polars encodes a non-finite double as ``null``) and
    no key's string holds ``.0,`` or ``.0}``."""
    fields = [*keys, pl.col("count")]
    fields += [pl.col(f"{m}__count").alias(f"{m}_count") for m in metrics]
    fields += [pl.col(f"__{name}").alias(name) for name, _, _ in finished]
    return pl.struct(fields).struct.json_encode()


def _cut_whole_dots(texts: pl.Series, frame: pl.DataFrame, finished: list[tuple[str, pl.Expr, str]]) -> pl.Series:
    """``texts`` (:func:`_encoded_row` of ``frame``) less the ``.0`` polars writes after a whole
    double, cut only in the rows that have one (a finished moment equal to its floor). By event
    type and user at 10 M events, asked for sum, mean, min and max, that is 1.7 % of the rows:
    ~3 instead of ~70 ms for the cut over every row (a standard deviation is 0 in every group of
    one event, so with it far more rows are cut)."""
    if not finished:
        return texts
    whole = frame.select(pl.any_horizontal(pl.col(f"__{name}") == pl.col(f"__{name}").floor() for name, _, _ in finished).fill_null(False))
    rows = whole.to_series().arg_true()
    if rows.len() == 0:
        return texts
    return texts.scatter(rows, texts.gather(rows).str.replace_all(_WHOLE_FLOAT, "${1}"))


def _concatenated_row(keys: list[pl.Expr], metrics: Sequence[str], finished: list[tuple[str, pl.Expr, str]], all_finite: bool) -> pl.Expr:
    """The row's text made piece by piece: any double, any key."""
    # `{"k1":…,"k2":…` without the closing brace; no keys: `{`.
    head = pl.struct(keys).struct.json_encode().str.head(-1) if keys else pl.lit("{")
    parts: list[pl.Expr] = [head, pl.lit(',"count":' if keys else '"count":'), pl.col("count").cast(pl.String)]
    parts += [p for m in metrics for p in (pl.lit(f',"{m}_count":'), pl.col(f"{m}__count").cast(pl.String))]
    for name, _, non_finite in finished:
        parts += [pl.lit(f',"{name}":'), json_number(pl.col(f"__{name}"), non_finite=None if all_finite else non_finite)]
    parts.append(pl.lit("}"))
    return pl.concat_str(parts)


def answer_columns(
    grouped: pl.DataFrame, group_by: Sequence[str], metrics: Sequence[str], window_ms: int | None, stats: Sequence[str] = STATS
) -> pl.DataFrame:
    """``grouped`` (as for :func:`answer_rows`) → the answer rows as columns, for an Arrow answer
    (``format: "arrow"``, ``src/merge/aggregate-arrow.ts`` interleaves the shards' frames): the
    keys (String; ``window`` as Int64 ``window_start`` and ``window_end``), ``count`` Int64, per
    metric ``m_count`` Int64 and ``m_sum``, ``m_mean``, ``m_min``, ``m_max``, ``m_stddev`` Float64
    (null where ``m_count`` is 0; a non-finite double stays that double), of those only the ones
    ``stats`` names. No JSON text is made:
    it was ~0.34 s of a shard's ~1.3 s for a by-user answer at 10 M events."""
    columns = _answer_keys(group_by, window_ms)
    columns.append(pl.col("count").cast(pl.Int64))
    for m in metrics:
        columns.append(pl.col(f"{m}__count").cast(pl.Int64).alias(f"{m}_count"))
        columns += [e.cast(pl.Float64).alias(name) for name, e, _ in _moments(m, stats)]
    return grouped.select(columns)


def _answer_keys(group_by: Sequence[str], window_ms: int | None) -> list[pl.Expr]:
    """The answer row's keys: strings, and ``window`` as Int64 ``window_start`` and ``window_end``."""
    keys: list[pl.Expr] = []
    for k in group_by:
        if k == "window":
            assert window_ms is not None
            keys += [pl.col("window_start").cast(pl.Int64), (pl.col("window_start") + window_ms).cast(pl.Int64).alias("window_end")]
        else:
            keys.append(pl.col(k).cast(pl.String))
    return keys


def _moments(m: str, stats: Sequence[str] = STATS) -> list[tuple[str, pl.Expr, str]]:
    """Metric ``m``'s finished moments that ``stats`` names, in :data:`STATS` order: (answer
    field, value, how JSON writes it when not finite: ``"name"`` a string naming it, ``"null"``
    null); null where ``m`` has no value."""
    n = pl.col(f"{m}__count")
    some = n > 0
    every = {
        "sum": (pl.col(f"{m}__sum"), "name"),
        "mean": (pl.col(f"{m}__mean"), "name"),
        "min": (pl.col(f"{m}__min"), "null"),
        "max": (pl.col(f"{m}__max"), "null"),
        # JavaScript's Math.sqrt(Math.max(0, m2) / count): the same IEEE operations.
        "stddev": ((pl.col(f"{m}__m2").clip(lower_bound=0.0) / n).sqrt(), "name"),
    }
    return [(f"{m}_{s}", pl.when(some).then(every[s][0]), every[s][1]) for s in STATS if s in stats]


def column_bytes(columns: pl.DataFrame) -> int:
    """The bytes ``columns`` (from :func:`answer_columns`) take at least in an Arrow answer: each
    string's UTF-8 bytes and 4-byte offset, 8 bytes per number (validity bits and the messages
    around them come on top), to refuse an answer over ``maxResponseBytes`` before sending it."""
    total = 0
    for name, dtype in columns.schema.items():
        if dtype == pl.String:
            total += int(columns[name].str.len_bytes().sum() or 0) + 4 * columns.height
        else:
            total += 8 * columns.height
    return total
