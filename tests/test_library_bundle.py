"""Agent Skills folders in and out, whole: bundled files, broken skills in a collection, long descriptions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skillkit.cli.main import app
from skillkit.core.schemas import DESCRIPTION_MAX
from skillkit.skills.bundle import BUNDLE_KEY, FileStore, attach_folder, bundled_files, read_folder
from skillkit.skills.extract import merge_skills
from skillkit.skills.library import SkillLibrary
from skillkit.skills.skillmd import export_skills, import_collection, split_front_matter

EMB = "hashing-64"
LONG = " ".join(f"Step {i}: read the form, fill the field, check the total." for i in range(40))
BINARY = bytes(range(256)) * 3 + b"\x89PNG\r\n\x1a\n\x00\xff"

GOOD = {
    "fill-forms": (
        "---\nname: fill-forms\ndescription: Fill PDF forms with the bundled script.\nlicense: Apache-2.0\n"
        "compatibility: needs python3\nallowed-tools: Bash Read\nmetadata:\n  author: tests\n  version: '1.2'\n"
        "---\n# Fill forms\n\nRun `scripts/fill.sh` then read `references/fields.md`.\n",
        {"scripts/fill.sh": (b"#!/bin/sh\necho filling \"$1\"\n", 0o755),
         "scripts/lib/helpers.py": (b"def total(xs):\n    return sum(xs)\n", 0o644),
         "references/fields.md": ("# Fields\n\n\u00e9t\u00e9 \u2014 caf\u00e9\n".encode(), 0o644),
         "assets/logo.png": (BINARY, 0o644),
         "assets/empty.txt": (b"", 0o644),
         "LICENSE.txt": (b"Apache License 2.0 (test text)\n", 0o644)}),
    "long-described": (
        f"---\nname: long-described\ndescription: '{LONG}'\n---\nThe description says it all.\n",
        {"run.py": (b"print('hi')\n", 0o750)}),
    "plain-skill": ("---\nname: plain-skill\ndescription: Only a SKILL.md.\n---\nBody.\n", {}),
}
BROKEN = {
    "broken-yaml": ("---\nname: broken-yaml\ndescription: [unclosed\n---\nbody\n", "YAML"),
    "no-front-matter": ("# Just markdown\n\nno front matter here\n", "front matter"),
    "bad-name": ("---\nname: Bad Name!\ndescription: A skillkit skill with a bad name.\nmetadata:\n"
                 "  skillkit-tier: atomic\n---\n", "name"),
}


def write_collection(root: Path, broken: bool = True) -> Path:
    """The fixture collection: good skill folders with every kind of bundled file, and broken ones."""
    for name, (text, files) in GOOD.items():
        (root / name).mkdir(parents=True)
        (root / name / "SKILL.md").write_text(text, encoding="utf-8")
        for rel, (data, mode) in files.items():
            path = root / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
    if broken:
        for name, (text, _) in BROKEN.items():
            (root / "more" / name).mkdir(parents=True)
            (root / "more" / name / "SKILL.md").write_text(text, encoding="utf-8")
    return root


def folder_state(folder: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file except SKILL.md: its bytes and whether it is executable."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "SKILL.md"}


def import_into(lib: SkillLibrary, root: Path) -> None:
    found = import_collection(root)
    for item in found.skills:
        lib.add(attach_folder(item.skill, item.folder, lib.file_store()))
    lib.save()


@pytest.mark.filterwarnings("ignore:.*over 1024:UserWarning")
def test_collection_import_reports_broken_skills_and_goes_on(tmp_path):
    root = write_collection(tmp_path / "src")
    found = import_collection(root)
    assert sorted(s.skill.name for s in found.skills) == sorted(GOOD)
    reasons = {b.path.parent.name: b.reason for b in found.broken}
    assert set(reasons) == set(BROKEN)
    for name, (_, why) in BROKEN.items():
        assert why in reasons[name], reasons[name]
    with pytest.raises(ValueError) as strict:
        import_collection(root, strict=True)
    assert all(str(root / "more" / n / "SKILL.md") in str(strict.value) for n in BROKEN)


def test_long_description_is_kept_in_full_with_a_warning(tmp_path):
    found = import_collection(write_collection(tmp_path / "src", broken=False))
    item = next(s for s in found.skills if s.skill.name == "long-described")
    assert len(LONG) > DESCRIPTION_MAX
    assert any("over 1024" in w for w in item.warnings)
    assert len(item.skill.description) <= DESCRIPTION_MAX and LONG.startswith(item.skill.description[:-1])
    assert not any(s.warnings for s in found.skills if s.skill.name != "long-described")


def test_whole_folders_round_trip_byte_for_byte(tmp_path):
    src = write_collection(tmp_path / "src")
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    import_into(lib, src)
    lib = SkillLibrary.load(tmp_path / "lib")
    out = tmp_path / "out"
    export_skills(lib, out, store=lib.file_store())
    for name, (text, _) in GOOD.items():
        assert folder_state(out / name) == folder_state(src / name), name
        front, body = split_front_matter((out / name / "SKILL.md").read_text(encoding="utf-8"))
        want, want_body = split_front_matter(text)
        assert body.strip().startswith(want_body.strip())  # a foreign skill also lists its tools
        assert {k: v for k, v in front.items() if k != "metadata"} == {k: v for k, v in want.items() if k != "metadata"}
        assert want.get("metadata", {}).items() <= front["metadata"].items()
    assert folder_state(out / "fill-forms")["scripts/fill.sh"][1]
    assert not folder_state(out / "fill-forms")["assets/logo.png"][1]
    # The export imports again to the same skills and files.
    again = SkillLibrary.create(tmp_path / "lib2", embedder=EMB)
    import_into(again, out)
    assert {s.name: s.model_dump(exclude={"id", "created_at", "modified_at"}) for s in again} == {
        s.name: s.model_dump(exclude={"id", "created_at", "modified_at"}) for s in lib}


def test_bundles_survive_versions_rollback_and_merge(tmp_path):
    src = write_collection(tmp_path / "src", broken=False)
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    import_into(lib, src)
    v1 = lib.get("fill-forms")
    lib.update(v1.model_copy(update={"description": "Fill PDF forms (edited)."}))
    assert bundled_files(lib.get("fill-forms")) == bundled_files(v1)

    (src / "fill-forms" / "scripts" / "fill.sh").write_bytes(b"#!/bin/sh\necho version three\n")
    (src / "fill-forms" / "references" / "fields.md").unlink()
    new = attach_folder(import_collection(src / "fill-forms").skills[0].skill, src / "fill-forms", lib.file_store())
    lib.update(new.model_copy(update={"id": v1.id}), op="import")
    lib.save()
    assert lib.get("fill-forms").version == 3
    assert {f.path for f in bundled_files(lib.get("fill-forms"))} == {
        "scripts/fill.sh", "scripts/lib/helpers.py", "assets/logo.png", "assets/empty.txt", "LICENSE.txt"}

    lib = SkillLibrary.load(tmp_path / "lib")
    lib.rollback("fill-forms", version=2)
    export_skills([lib.get("fill-forms")], tmp_path / "v2", store=lib.file_store())
    state = folder_state(tmp_path / "v2" / "fill-forms")
    assert state["scripts/fill.sh"] == (GOOD["fill-forms"][1]["scripts/fill.sh"][0], True)
    assert "references/fields.md" in state

    rolled_back = lib.get("fill-forms")
    merged = merge_skills(rolled_back, [lib.get("plain-skill")])
    lib.remove("plain-skill")
    kept = lib.update(merged, op="merge")
    assert bundled_files(kept) == bundled_files(rolled_back)
    assert {f.path for f in bundled_files(kept)} >= {"references/fields.md", "assets/logo.png"}


def test_bundle_errors_are_clear(tmp_path):
    src = write_collection(tmp_path / "src", broken=False)
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    import_into(lib, src)
    skill = lib.get("fill-forms")
    with pytest.raises(ValueError, match="export it from its library"):
        export_skills([skill], tmp_path / "nostore")
    logo = next(f for f in bundled_files(skill) if f.path == "assets/logo.png")
    blob = lib.path / "files" / logo.sha256[:2] / logo.sha256
    blob.write_bytes(b"tampered")
    with pytest.raises(ValueError, match="damaged"):
        export_skills([skill], tmp_path / "bad", store=lib.file_store())
    assert not (tmp_path / "bad" / "fill-forms").exists()  # the folder appears whole or not at all
    evil = skill.model_copy(update={"metadata": {BUNDLE_KEY: [{"path": "../escape.sh", "sha256": "0" * 64,
                                                               "size": 1, "executable": True}]}})
    with pytest.raises(ValueError, match="inside the skill folder"):
        bundled_files(evil)


def test_read_folder_skips_links_and_tool_state(tmp_path):
    folder = write_collection(tmp_path / "src", broken=False) / "fill-forms"
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref")
    (folder / "link.sh").symlink_to(folder / "scripts" / "fill.sh")
    with pytest.warns(UserWarning, match="symbolic link"):
        paths = [entry.path for entry, _ in read_folder(folder)]
    assert paths == sorted(GOOD["fill-forms"][1])
    assert FileStore(tmp_path / "store").put(b"x") == FileStore(tmp_path / "store").put(b"x")


def test_cli_imports_collections_and_shows_and_exports_files(tmp_path):
    runner = CliRunner()
    src = write_collection(tmp_path / "src")
    lib = tmp_path / "lib"
    strict = runner.invoke(app, ["library", "import", str(src), "--out", str(lib), "--embedder", EMB, "--strict"])
    assert strict.exit_code != 0 and not SkillLibrary.exists(lib)
    result = runner.invoke(app, ["library", "import", str(src), "--out", str(lib), "--embedder", EMB])
    assert result.exit_code == 0, result.output
    assert "imported 3 skill(s)" in result.output and "3 broken" in result.output
    for name in BROKEN:
        assert f"{name}/SKILL.md" in result.output.replace("\n", "")
    shown = runner.invoke(app, ["library", "show", str(lib), "--name", "fill-forms"])
    assert shown.exit_code == 0 and "bundled files (6)" in shown.output
    assert "scripts/fill.sh" in shown.output and "(executable)" in shown.output
    data = json.loads(runner.invoke(app, ["library", "show", str(lib), "--name", "fill-forms", "--json"]).output)
    assert len(data["metadata"][BUNDLE_KEY]) == 6
    out = tmp_path / "out"
    assert runner.invoke(app, ["library", "export", str(lib), "--out", str(out)]).exit_code == 0
    for name in GOOD:
        assert folder_state(out / name) == folder_state(src / name)
