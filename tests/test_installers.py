"""The Linux launcher installs a valid desktop entry pointing at this checkout, and removes it."""

import configparser
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_linux_desktop_entry_round_trip(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    script = ROOT / "installers" / "linux" / "install.sh"
    subprocess.run(["bash", str(script)], check=True, env=env, capture_output=True)
    entry = tmp_path / "share" / "applications" / "lumos-studio.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Name"] == "Lumos Studio"
    assert f'"{ROOT}/bootstrap.py" app' in section["Exec"]
    assert Path(section["Icon"]).is_file()
    subprocess.run(["bash", str(script), "--uninstall"], check=True, env=env, capture_output=True)
    assert not entry.exists()
