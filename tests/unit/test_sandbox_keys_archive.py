"""The archive that gives a sandbox server its root key: exact, and nothing after its end."""

import io
import tarfile

from codeb_infra.sandbox.servers import authorized_keys_archive

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTheArchiveTest sandbox"


def test_archive_holds_root_key_with_private_modes() -> None:
    with tarfile.open(fileobj=io.BytesIO(authorized_keys_archive(KEY))) as archive:
        members = {m.name: m for m in archive.getmembers()}
        keys = archive.extractfile("root/.ssh/authorized_keys")
        assert keys is not None and keys.read() == KEY.encode() + b"\n"
    assert members["root/.ssh"].isdir() and members["root/.ssh"].mode == 0o700
    assert members["root/.ssh/authorized_keys"].mode == 0o600


def test_archive_ends_at_its_end_of_archive_blocks() -> None:
    """No record padding after the two zero blocks: podman's copier would stop reading before it."""
    data = authorized_keys_archive(KEY)
    assert len(data) % tarfile.BLOCKSIZE == 0
    assert data.endswith(b"\0" * 2 * tarfile.BLOCKSIZE)
    assert data[-3 * tarfile.BLOCKSIZE : -2 * tarfile.BLOCKSIZE].strip(b"\0") != b""  # the key's data block
