"""Schema loading from Spider tables.json, lookups, filtering, prompt text; symbol tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masksql_pipe.errors import InputError
from stages.sql.schema import load_schema, load_schemas
from stages.sql.symbols import SymbolTable

DATA = Path(__file__).resolve().parents[2] / "data"
TABLES = DATA / "tables.json"


def write_tables(path: Path) -> Path:
    entry = {
        "db_id": "shop",
        "table_names_original": ["Customer", "Order_Item"],
        "column_names_original": [
            [-1, "*"],
            [0, "customer_id"],
            [0, "Name"],
            [1, "item_id"],
            [1, "customer_id"],
            [1, "name"],
            [1, "Unit Price"],
        ],
        "column_types": ["text", "number", "text", "number", "number", "text", "number"],
        "primary_keys": [1, [3, 4]],
        "foreign_keys": [[4, 1]],
    }
    path.write_text(json.dumps([entry]), encoding="utf-8")
    return path


def test_load_parses_tables_columns_types_keys(tmp_path: Path) -> None:
    schema = load_schema(write_tables(tmp_path / "tables.json"), "shop")
    assert [t.name for t in schema.tables] == ["Customer", "Order_Item"]
    item = schema.table("order_item")
    assert item is not None
    assert [c.name for c in item.columns] == ["item_id", "customer_id", "name", "Unit Price"]
    assert [c.type for c in item.columns] == ["number", "number", "text", "number"]
    assert item.primary_keys == ["item_id", "customer_id"]
    assert schema.table("CUSTOMER").primary_keys == ["customer_id"]
    fk = schema.foreign_keys[0]
    assert (fk.table, fk.column, fk.ref_table, fk.ref_column) == (
        "Order_Item",
        "customer_id",
        "Customer",
        "customer_id",
    )
    assert schema.column("customer", "NAME").name == "Name"
    assert [t.name for t in schema.tables_with_column("name")] == ["Customer", "Order_Item"]
    assert schema.column_names() == ["customer_id", "Name", "item_id", "Unit Price"]


def test_missing_db_id_names_file_and_db(tmp_path: Path) -> None:
    path = write_tables(tmp_path / "tables.json")
    with pytest.raises(InputError) as err:
        load_schema(path, "no_such_db")
    msg = str(err.value)
    assert "tables.json" in msg and "no_such_db" in msg and "\n" not in msg


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_schemas(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json"):
        load_schemas(bad)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"db_id": "x", "table_names_original": ["a"]}]))
    with pytest.raises(InputError, match="'x'"):
        load_schemas(broken)


def test_reload_after_file_changes(tmp_path: Path) -> None:
    path = write_tables(tmp_path / "tables.json")
    assert set(load_schemas(path)) == {"shop"}
    data = json.loads(path.read_text())
    data[0]["db_id"] = "shop2"
    data.append(json.loads(path.read_text())[0])
    path.write_text(json.dumps(data) + "\n" * 3)
    assert set(load_schemas(path)) == {"shop", "shop2"}


def test_text_rendering_and_filter(tmp_path: Path) -> None:
    schema = load_schema(write_tables(tmp_path / "tables.json"), "shop")
    assert schema.to_text() == (
        "Customer(customer_id, Name)\n"
        'Order_Item(item_id, customer_id, name, "Unit Price")\n'
        "Foreign keys:\n"
        "Order_Item.customer_id = Customer.customer_id"
    )
    small = schema.filter({"order_item": ["Unit Price"]})
    # primary keys stay; the foreign key goes with the dropped table
    assert small.to_text(types=True) == (
        "Order_Item(item_id number primary key, customer_id number primary key, "
        '"Unit Price" number)'
    )
    both = schema.filter({"Customer": ["name"], "Order_Item": ["name"]})
    assert both.to_text() == (
        "Customer(customer_id, Name)\n"
        "Order_Item(item_id, customer_id, name)\n"
        "Foreign keys:\n"
        "Order_Item.customer_id = Customer.customer_id"
    )
    assert schema.filter({"nope": []}).tables == []


def test_sample_tables_json_has_umlaut_schema() -> None:
    schema = load_schema(TABLES, "deutsche_staedte")
    assert schema.column("städte", "bürgermeister") is not None
    assert schema.column("Städte", "Fläche km2").type == "number"
    assert set(load_schemas(TABLES)) == {"music_festival", "university", "deutsche_staedte"}


def test_symbols_per_distinct_column_name_in_schema_order(tmp_path: Path) -> None:
    schema = load_schema(write_tables(tmp_path / "tables.json"), "shop")
    symbols = SymbolTable.from_schema(schema)
    assert symbols.tables == {"T1": "Customer", "T2": "Order_Item"}
    assert symbols.columns == {
        "C1": "customer_id",
        "C2": "Name",
        "C3": "item_id",
        "C4": "Unit Price",
    }
    assert symbols.column_symbol("NAME") == "C2"
    assert symbols.table_symbol("order_item") == "T2"
    assert symbols.item_symbol("Order_Item.name") == "T2.C2"
    assert symbols.column_name("c4") == "Unit Price"


def test_symbols_deterministic_and_json_round_trip() -> None:
    schema = load_schema(TABLES, "university")
    a, b = SymbolTable.from_schema(schema), SymbolTable.from_schema(schema)
    assert a.to_dict() == b.to_dict()
    a.add_value("Physics", "department.dept_name", "physics")
    a.add_value(4, "course.credits")
    assert a.add_value("Physics") == "V1"  # same value, same symbol
    assert a.add_value(4.0) == "V2"  # numbers compare by value
    assert a.add_value("physics") == "V3"  # SQL strings are case-sensitive
    text = json.dumps(a.to_dict(), ensure_ascii=False)
    back = SymbolTable.from_dict(json.loads(text))
    assert back == a
    assert back.value("V1").column == "department.dept_name"
    assert back.symbol_for_surface("PHYSICS") == "V1"
    assert back.value_notes()[:2] == ["V1: a value of T1.C2", "V2: a value of T4.C12"]
    # every symbol maps to exactly one name and back
    for sym, name in back.columns.items():
        assert back.column_symbol(name) == sym
    for sym, name in back.tables.items():
        assert back.table_symbol(name) == sym
