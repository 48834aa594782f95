"""Make `import gan_helpers` work however pytest is started (the module lives in the repository root)."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
