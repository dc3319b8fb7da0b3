"""The families and presets as Markdown tables, built from the registry and the preset files.

`ganforge presets --markdown` prints them; the README carries the same text between marker comments and
tests/test_readme.py checks that it still matches, so a new family or preset shows up in the docs.
"""

from __future__ import annotations

from ganforge.config import load_preset, preset_description, preset_names
from ganforge.models import FAMILIES

__all__ = ["families_table", "presets_table"]


def _length(train: dict) -> str:
    if train.get("epochs"):
        return f"{train['epochs']:g} epochs"
    return f"{train.get('steps', 2000):,} steps"


def presets_table() -> str:
    """One row per preset: its family, data, loss, regularizers, length and first comment line."""
    rows = ["| preset | family | data | loss (+ regularizers) | length | what |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name in preset_names():
        raw = load_preset(name)
        data, model, loss, train = (raw.get(k) or {} for k in ("data", "model", "loss", "train"))
        size = data.get("image_size")
        where = data.get("name", "digits") + (f" at {'x'.join(map(str, size))}" if size else "")
        regs = ", ".join(loss.get("regularizers") or {})
        loss_text = loss.get("name", "nonsaturating") + (f" + {regs}" if regs else "")
        family = model.get("family", "dcgan") + (" (conditional)" if model.get("conditional") else "")
        rows.append(f"| `{name}` | {family} | {where} | {loss_text} | {_length(train)} | {preset_description(name)} |")
    return "\n".join(rows)


def families_table() -> str:
    """One row per registered family: what it is, what a user runs on it, and the presets that use it."""
    users: dict[str, list[str]] = {}
    for name in preset_names():
        users.setdefault((load_preset(name).get("model") or {}).get("family", "dcgan"), []).append(f"`{name}`")
    rows = ["| family | what | task | presets |", "| --- | --- | --- | --- |"]
    for name in FAMILIES.names():
        family = FAMILIES[name]
        if not type(family).__module__.startswith("ganforge."):  # registered by a test or a user's script
            continue
        rows.append(f"| `{name}` | {family.description} | {family.sampler.task} | "
                    f"{', '.join(users.get(name, [])) or '(none: `--set model.family=' + name + '`)'} |")
    return "\n".join(rows)
