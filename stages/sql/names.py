"""How a question may write a schema name: `_` as spaces and the one simple plural rule, for
the guard, the gold-answer oracle, masking and the schema's name test alike."""

from __future__ import annotations


def singulars(form: str) -> list[str]:
    """The singular forms a plural `form` may stand for, likeliest first (`classes` -> class,
    classe; `countries` -> country); [] when it does not read as a plural."""
    low = form.lower()
    if low.endswith("ies"):
        return [form[:-3] + "y"]
    if low.endswith(("ses", "xes", "ches", "shes")):
        return [form[:-2], form[:-1]]  # classes -> class, courses -> course
    if low.endswith("s") and not low.endswith("ss"):
        return [form[:-1]]
    return []


def name_variants(name: str) -> list[str]:
    """Ways a question may write a schema name: as is, `_` as spaces, simple plural/singular."""
    base = {name, name.replace("_", " ")}
    out: set[str] = set()
    for form in base:
        out.add(form)
        low = form.lower()
        out.update(singulars(form))
        if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
            out.add(form[:-1] + "ies")
        elif low.endswith(("s", "x", "ch", "sh")):
            out.add(form + "es")
        else:
            out.add(form + "s")
    return sorted((v for v in out if v.strip()), key=lambda v: (-len(v), v))


def name_forms(text: str) -> set[str]:
    """`text` lower case, `_` as spaces, runs of spaces as one, and each singular it may be
    the plural of: two names are the same name when their forms meet (`courses`, `course`)."""
    low = " ".join(text.replace("_", " ").lower().split())
    return {form for form in (low, *singulars(low)) if form.strip()}
