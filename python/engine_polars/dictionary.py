"""Dictionary-encoded string columns: polars ``Categorical`` with a store-owned ``Categories``
whose physical type grows with the number of distinct values.

Why not plain ``pl.Categorical``: its default categories are process-global with ``UInt32``
codes (4 bytes per row); ``event_type`` and most metadata values have a handful of values and
fit a ``UInt8`` (1 byte per row). A :class:`Dictionary` starts at ``UInt8`` and widens to
``UInt16`` and ``UInt32`` (re-encoding the columns already held, once per step) when a batch
brings more values than the current width can code.

Two polars behaviours (1.44) every user of these columns must respect:

* a Categorical sorts lexically (by its strings), groups and compares with ``==`` like the
  strings it holds, and its string output is unchanged, so results cast to ``String`` at the
  end are identical to a plain ``String`` column's;
* ``is_in`` with strings (a list, a Series, a literal) *inserts* every value it does not know
  into the categories, and fails once a ``UInt8``/``UInt16`` mapping is full. So membership
  tests go through :func:`is_in_strings`, which looks the strings up and compares codes, and
  joins with string keys go through :func:`codes_of`; neither ever inserts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import polars as pl

__all__ = ["Dictionary", "category_count", "category_strings", "codes_of", "lexical_ranks", "is_categorical", "is_in_strings"]

#: physical type → how many distinct values it codes (polars keeps the top code for itself).
_WIDTHS: tuple[tuple[pl.DataType, int], ...] = ((pl.UInt8(), 2**8 - 1), (pl.UInt16(), 2**16 - 1), (pl.UInt32(), 2**32 - 1))


def is_categorical(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Categorical)


def category_count(dtype: pl.DataType) -> int:
    """How many codes a Categorical dtype has handed out (its strings' count)."""
    assert isinstance(dtype, pl.Categorical)
    inner = getattr(dtype.categories, "_categories", None)
    return int(inner.num_cats_upper_bound()) if inner is not None else dtype.categories.to_series().len()


#: What is kept per store dictionary, by its identity (:func:`_identity`): its listed strings
#: (:func:`category_strings`) and its lexical ranks (:func:`lexical_ranks`), the newest only.
_LISTED: OrderedDict[tuple[str, str, str], pl.Series] = OrderedDict()
_RANKED: OrderedDict[tuple[str, str, str], tuple[pl.Series, pl.Series]] = OrderedDict()
#: Dictionaries kept: a store has a handful (event_type, user_id, metadata keys); a widened one
#: gets a new identity and ages out.
_KEPT_MAX = 16


def _identity(cats: pl.Categories) -> tuple[str, str, str]:
    return (cats.name(), cats.namespace(), str(cats.physical()))


def _keep(cache: OrderedDict[Any, Any], key: tuple[str, str, str], value: Any) -> None:
    """``value`` for ``key`` (replacing an older one), the least recently used past _KEPT_MAX dropped."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _KEPT_MAX:
        cache.popitem(last=False)


def category_strings(dtype: pl.DataType) -> pl.Series:
    """The strings of a Categorical dtype, in code order (code i is element i).

    ``Categories.to_series()`` lists the whole mapping in a Python loop (polars 1.44, ~0.35 µs per
    string: ~60 ms for a shard's 170,000 user ids, on every query that ranks or names them). A
    dictionary only ever appends (a code keeps its string; widening makes a new ``Categories``),
    so the listing is kept per ``Categories`` and only the codes handed out since are listed. A
    listing with a code reserved but not yet named (polars documents that it can happen while a
    cast runs) is not kept."""
    assert isinstance(dtype, pl.Categorical)
    cats = dtype.categories
    inner = getattr(cats, "_categories", None)
    if inner is None:
        return cats.to_series()
    key = _identity(cats)
    count = int(inner.num_cats_upper_bound())
    known = _LISTED.get(key)
    if known is not None and known.len() == count:
        _LISTED.move_to_end(key)
        return known
    if known is not None and known.len() < count:
        more = pl.Series(known.name, [inner.cat_to_str(i) for i in range(known.len(), count)], dtype=pl.String)
        listed = pl.concat([known, more], rechunk=True)
    else:
        listed = cats.to_series()
    if listed.null_count() == 0:
        _keep(_LISTED, key, listed)
    return listed


def lexical_ranks(dtype: pl.DataType) -> tuple[pl.Series, pl.Series]:
    """(each code's rank among the dictionary's strings, UInt64 in code order; the strings
    sorted) of a Categorical dtype. Ranking and sorting a shard's 170,000 user ids took ~40 ms
    per query that grouped by them; they are kept per dictionary, for its current strings only (a
    dictionary that took new strings is ranked again, and its older ranks dropped)."""
    assert isinstance(dtype, pl.Categorical)
    strings = category_strings(dtype)
    key = _identity(dtype.categories)
    ranked = _RANKED.get(key)
    if ranked is not None and ranked[0].len() == strings.len():
        _RANKED.move_to_end(key)
        return ranked
    ranked = ((strings.rank("ordinal") - 1).cast(pl.UInt64), strings.sort())
    if strings.null_count() == 0:
        _keep(_RANKED, key, ranked)
    return ranked


def codes_of(values: pl.Series | Iterable[str], dtype: pl.DataType) -> pl.DataFrame:
    """``value`` (String) → ``code`` (the physical type of ``dtype``) for each of ``values`` that
    ``dtype`` already codes; unknown values are left out. Never inserts."""
    cats = category_strings(dtype)
    assert isinstance(dtype, pl.Categorical)
    physical = dtype.categories.physical()
    wanted = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)
    return (
        wanted.cast(pl.String)
        .unique()
        .to_frame("value")
        .join(cats.to_frame("value").with_row_index("code"), on="value", how="inner")
        .select("value", pl.col("code").cast(physical))
    )


def is_in_strings(name: str, dtype: pl.DataType, values: pl.Series | Iterable[str]) -> pl.Expr:
    """``pl.col(name).is_in(values)`` for a String or Categorical column, without inserting
    unknown strings into a Categorical's categories."""
    if not is_categorical(dtype):
        if isinstance(values, pl.Series):
            return pl.col(name).is_in(values.implode())
        return pl.col(name).is_in(list(values))
    codes = codes_of(values, dtype)["code"]
    return pl.col(name).to_physical().is_in(codes.implode())


def _none_refused(n: int) -> pl.Series:
    # Not pl.repeat(eager=True): that runs a query (~0.2 ms each, three per append).
    return pl.Series("refused", [False], dtype=pl.Boolean).new_from_index(0, n)


class Dictionary:
    """The dtype of one dictionary-encoded column of a store, widened as values arrive.

    ``widest`` caps the physical type: past its capacity :meth:`encode` leaves the values it
    cannot code null and reports them (the caller keeps those rows another way).
    """

    def __init__(self, widest: pl.DataType = pl.UInt32(), start: pl.DataType = pl.UInt8()) -> None:
        widths = [w for w, _ in _WIDTHS]
        self._step = widths.index(start)
        self._last = widths.index(widest)
        self.dtype: pl.Categorical = self._new_dtype()

    def _new_dtype(self) -> pl.Categorical:
        return pl.Categorical(pl.Categories.random(physical=_WIDTHS[self._step][0]))

    @property
    def capacity(self) -> int:
        return _WIDTHS[self._step][1]

    @property
    def size(self) -> int:
        return category_count(self.dtype)

    def encode(self, values: pl.Series) -> tuple[pl.Series, bool, pl.Series]:
        """``values`` (String) as this dictionary's Categorical.

        Returns (encoded, widened, refused): ``widened`` says the dtype changed, so every column
        already encoded with the old one must be re-encoded with :meth:`recode`; ``refused``
        (Boolean, one per value) marks values left null because the widest width is full.
        """
        values = values.cast(pl.String)
        if self._step == len(_WIDTHS) - 1:
            # UInt32 codes: 4 billion values; not worth counting the new ones on every batch.
            return values.cast(self.dtype), False, _none_refused(values.len())
        if self._step < self._last:
            # Below the widest width nothing is ever refused: cast straight away (the mapping takes
            # the new values), and count only when it is full (polars raises; the values it took
            # before that keep their codes and are simply known). Counting first (unique + is_in)
            # cost ~180 ns a row on 65,536-row batches of user ids.
            try:
                return values.cast(self.dtype), False, _none_refused(values.len())
            except pl.exceptions.ComputeError:
                pass
        known = category_strings(self.dtype)
        distinct = values.drop_nulls().unique()
        new = distinct.filter(~distinct.is_in(known.implode()))
        need = known.len() + new.len()
        widened = False
        while need > self.capacity and self._step < self._last:
            self._step += 1
            widened = True
        if widened:
            self.dtype = self._new_dtype()
            known.cast(self.dtype)  # the old values keep the lowest codes
        refused = _none_refused(values.len())
        if need > self.capacity:
            admitted = pl.concat([known, new.sort().head(self.capacity - known.len())])
            refused = values.is_not_null() & ~values.is_in(admitted.implode())
            values = pl.select(pl.when(refused).then(None).otherwise(values)).to_series().alias(values.name)
        return values.cast(self.dtype), widened, refused

    def recode(self, column: pl.Series) -> pl.Series:
        """A column encoded with an older dtype of this dictionary, in the current one."""
        return column.cast(pl.String).cast(self.dtype)
