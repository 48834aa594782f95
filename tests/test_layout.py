"""The package layout: gan_helpers.py is a thin face, every gankit module is small, and imports go one way (a module
imports only modules listed before it in gankit.LAYERS), read from the source with ast, so a cycle or a backward
import fails here before it can bite at run time."""
import ast
from pathlib import Path

import gan_helpers as gh
import gankit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gankit"


def module_name(path: Path) -> str:
    """gankit/models/dcgan.py -> 'models.dcgan'."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def imported_modules(source: str, me: str) -> set[str]:
    """The gankit modules that the source of module `me` (a LAYERS name) imports, relative or absolute."""
    package = me.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gankit."):
            found.add(node.module.removeprefix("gankit."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("gankit.") for a in node.names if a.name.startswith("gankit.")}
    return found


def package_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]


def test_every_module_is_layered_and_imports_only_lower_layers():
    layers = {name: i for i, name in enumerate(gankit.LAYERS)}
    assert sorted(module_name(p) for p in package_files()) == sorted(layers), "LAYERS must list every module once"
    backward = {}
    for path in package_files():
        me = module_name(path)
        bad = [m for m in imported_modules(path.read_text(), me) if layers.get(m, len(layers)) >= layers[me]]
        if bad:
            backward[me] = bad
    assert not backward, f"imports of the same or a higher layer (or unknown modules): {backward}"


def test_the_import_reader_sees_every_spelling():
    """The check above is only as good as imported_modules(): relative from a subpackage, absolute, nested."""
    source = ("from .training import train\nimport gankit.cli\nfrom gankit.data import ImageSet\n"
              "from ..core import GanError\nfrom . import resnet\n\ndef f():\n    from ..plots import show_grid\n")
    assert imported_modules(source, "models.probe") == {"models.training", "cli", "data", "core", "models", "plots"}
    assert {"registry", "config", "layers"} <= imported_modules((PACKAGE / "models" / "mlp.py").read_text(), "models.mlp")


def test_modules_are_small_and_the_face_is_thin():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in package_files()}
    assert max(sizes.values()) <= 500, {m: n for m, n in sizes.items() if n > 500}
    assert len((ROOT / "gan_helpers.py").read_text().splitlines()) <= 150


def test_the_face_is_a_curated_vocabulary_of_the_package():
    """gan_helpers exports at most about 100 of the package's public names, the same objects; the rest is reached
    as gankit.<module>.<name>."""
    assert len(gh.__all__) <= 100 and set(gh.__all__) <= set(gankit.__all__)
    for name in gh.__all__:
        assert getattr(gh, name) is getattr(gankit, name)
    assert not hasattr(gh, "power_iteration") and not hasattr(gh, "CapturedStep")   # internals stay off the face
    assert len(set(gankit.__all__)) == len(gankit.__all__), "two modules export the same name"
    assert callable(gh.main)
