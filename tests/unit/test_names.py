"""Lake names: Unicode kept, deterministic, and distinct source identifiers never silently merged."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeforge.config.models import TableConfig
from lakeforge.errors import ConfigError
from lakeforge.lake.naming import bronze_table_name, lake_column_names, normalize
from lakeforge.load.plan import PlannedTable, apply_select, check_collisions
from lakeforge.sources.base import TableRef

RESERVED = ["select", "from", "table", "order", "group", "user", "SELECT", "Order", "null", "_lf_source", "_lf_x"]
identifiers = st.one_of(
    st.text(min_size=1, max_size=12),  # any Unicode, quotes, spaces, controls
    st.text(alphabet=string.ascii_letters + " _-'\"`", min_size=1, max_size=8),  # case and punctuation clashes
    st.sampled_from(RESERVED),
    st.text(alphabet="商品価格数量ÄäÖößẞéé_ ", min_size=1, max_size=6),  # composed and decomposed é
)
_VALID = re.compile(r"^[^\W\d]\w*$|^_\w*$")


def test_unicode_letters_are_kept() -> None:
    assert normalize("商品") == "商品"
    assert lake_column_names(["価格", "数量"], table="t") == ["価格", "数量"]
    assert normalize("Größe") == "größe"
    assert normalize("Dup Name") == "dup_name"
    assert normalize("é") == normalize("é")  # NFC: one spelling of the same letter
    assert normalize("?") == "u003f" and normalize("€") == "u20ac" and normalize("2020 sales") == "_2020_sales"


@settings(max_examples=400, deadline=None)
@given(st.lists(identifiers, min_size=1, max_size=8, unique=True))
def test_distinct_columns_never_share_a_lake_name_without_an_error(names: list[str]) -> None:
    try:
        lake = lake_column_names(names, table="t")
    except ConfigError as exc:
        # an error only when two names really do normalise alike, and it names both
        spelled = [normalize(n) for n in names]
        assert len(set(spelled)) < len(spelled) or any(s.startswith("_lf_") for s in spelled)
        assert "both become" in str(exc)
        return
    assert len(set(lake)) == len(lake)
    for name, spelled in zip(names, lake, strict=True):
        assert _VALID.match(spelled), (name, spelled)
        assert spelled == normalize(name) or spelled == "src" + normalize(name)
        assert normalize(name) == normalize(name)  # deterministic


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["my", "my_x", "crm", "Shop"]), identifiers), min_size=1, max_size=8,
                unique=True))
def test_distinct_tables_never_share_a_lake_table_without_an_error(tables: list[tuple[str, str]]) -> None:
    planned = [
        PlannedTable(source, TableRef("public", table), TableConfig(), "bronze." + bronze_table_name(
            source, "public", table, "public"), "full")
        for source, table in tables
    ]
    names = [p.table for p in planned]
    if len(set(names)) == len(names):
        check_collisions(planned)
        return
    with pytest.raises(ConfigError) as caught:
        check_collisions(planned)
    clashing = {n for n in names if names.count(n) > 1}
    for item in planned:
        if item.table in clashing:
            assert f"{item.source}.{item.ref.qualified}" in str(caught.value)


def test_selection_matching_nothing_names_close_tables() -> None:
    planned = [PlannedTable("crm", TableRef("public", "customers"), TableConfig(), "bronze.crm_customers", "full")]
    assert apply_select(planned, ["crm_cust*"], allow_empty=False) == planned
    with pytest.raises(ConfigError, match=r"'crm_custmers' \(close: crm_customers.*--allow-empty"):
        apply_select(planned, ["crm_custmers"], allow_empty=False)
    assert apply_select(planned, ["nothing"], allow_empty=True) == []
    with pytest.raises(ConfigError, match="no table is selected"):
        apply_select([], None, allow_empty=False)


def test_a_table_name_option_must_be_a_lake_name() -> None:
    with pytest.raises(ValueError, match="write it as 'dup_name'"):
        TableConfig(name="Dup Name")
