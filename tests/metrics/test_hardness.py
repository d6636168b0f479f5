"""Spider hardness classes on hand-picked queries; each expected count is worked out by hand."""

from __future__ import annotations

import pytest

from stages.metrics.hardness import Components, classify, components, hardness

CASES = [
    # (sql, structure, nested, others, class) -- counts derived in the comments
    # nothing but one aggregate: 0 / 0 / 0
    ("SELECT count(*) FROM singer", 0, 0, 0, "easy"),
    # WHERE: structure 1; one condition, one column: easy
    ("SELECT name FROM singer WHERE age > 20", 1, 0, 0, "easy"),
    # BETWEEN x AND y is one condition: WHERE 1, others 0 -> easy
    ("SELECT name FROM s WHERE age BETWEEN 1 AND 5", 1, 0, 0, "easy"),
    # ORDER BY: structure 1; three select columns: others 1 -> medium
    ("SELECT name, country, age FROM singer ORDER BY age DESC", 1, 0, 1, "medium"),
    # one JOIN (1) + WHERE (1) = 2, others 0 -> medium by the second rule
    (
        "SELECT T1.name FROM a AS T1 JOIN b AS T2 ON T1.id = T2.id WHERE T2.x = 1",
        2,
        0,
        0,
        "medium",
    ),
    # WHERE (1) + LIKE (1) = 2; BETWEEN's AND is no connector, the AND is: 2 conditions
    # -> others 1 -> medium
    (
        "SELECT name FROM s WHERE age BETWEEN 1 AND 5 AND name LIKE 'a%'",
        2,
        0,
        1,
        "medium",
    ),
    # a subquery in WHERE: nested 1, WHERE 1, one column -> hard (third rule)
    ("SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer)", 1, 1, 0, "hard"),
    # a set operation: nested 1 and nothing else -> hard
    ("SELECT name FROM a UNION SELECT name FROM b", 0, 1, 0, "hard"),
    # WHERE + GROUP BY = 2; aggregates count + max = 2 (>1), 3 select columns, 2 where
    # conditions, 2 group columns: others 4 > 2 -> hard (first rule)
    (
        "SELECT country, count(*), max(age) FROM singer WHERE age > 20 AND age < 40 "
        "GROUP BY country, city",
        2,
        0,
        4,
        "hard",
    ),
    # JOIN 1 + WHERE 1 + ORDER BY 1 = 3, others 0 -> hard (second rule)
    (
        "SELECT T1.name FROM a AS T1 JOIN b AS T2 ON T1.id = T2.id WHERE T2.x = 1 ORDER BY T1.name",
        3,
        0,
        0,
        "hard",
    ),
    # two JOINs (2) + WHERE + ORDER BY + LIMIT = 5 > 3 -> extra
    (
        "SELECT T1.name FROM a AS T1 JOIN b AS T2 ON T1.id = T2.id JOIN c AS T3 "
        "ON T2.id = T3.id WHERE T3.x = 1 ORDER BY T1.name LIMIT 1",
        5,
        0,
        0,
        "extra",
    ),
    # nested 1 with two select columns (others 1) -> no rule but extra
    ("SELECT name, age FROM singer WHERE age > (SELECT avg(age) FROM singer)", 1, 1, 1, "extra"),
    # the evaluator's quirks: HAVING's AND counts as an aggregate, WHERE's NOT IN too;
    # structure: WHERE 1 + GROUP 1 = 2 (HAVING is none); nested 1; aggregates: NOT 1 +
    # HAVING's AND 1 = 2 > 1 (count and sum in HAVING do not count) -> others 1
    (
        "SELECT a FROM t WHERE b NOT IN (SELECT b FROM u) GROUP BY a "
        "HAVING count(*) > 1 AND sum(c) > 2",
        2,
        1,
        1,
        "extra",
    ),
]


@pytest.mark.parametrize(("sql", "structure", "nested", "others", "level"), CASES)
def test_components_and_class(sql: str, structure: int, nested: int, others: int, level: str):
    assert components(sql) == Components(structure, nested, others)
    assert hardness(sql) == level


def test_quirk_aggregate_count_reaches_others():
    # HAVING with one AND adds 1, the NOT IN of WHERE adds 1: 2 aggregates > 1 -> others 1
    sql = "SELECT a FROM t WHERE b NOT LIKE 'x' GROUP BY a HAVING c > 1 AND d > 2"
    # structure: WHERE 1 + GROUP 1 + LIKE 1 = 3
    assert components(sql) == Components(3, 0, 1)


def test_subquery_in_from_is_one_table_and_not_nested():
    sql = "SELECT x FROM (SELECT a AS x FROM t WHERE a > 1 ORDER BY a LIMIT 3)"
    assert components(sql) == Components(0, 0, 0)
    assert hardness(sql) == "easy"


def test_decision_rules_at_their_boundaries():
    assert classify(Components(1, 0, 0)) == "easy"
    assert classify(Components(1, 0, 2)) == "medium"
    assert classify(Components(2, 0, 1)) == "medium"
    assert classify(Components(2, 0, 2)) == "extra"  # others 2 with 2 clauses fits no rule
    assert classify(Components(3, 0, 2)) == "hard"
    assert classify(Components(4, 0, 0)) == "extra"
    assert classify(Components(0, 2, 0)) == "extra"
