"""Model files are bounded before Keras reads them: a zip bomb, too many members, a weights-file bomb."""

import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from zip_bomb import write_zip_bomb

from kzoo.engine.archive_guard import MAX_MEMBERS, check_keras_archive, check_keras_file, check_weights_path
from kzoo.errors import CheckpointError


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return write_zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.keras")


def test_the_bomb_is_what_the_issue_describes(bomb):
    member = zipfile.ZipFile(bomb).infolist()[0]
    assert bomb.stat().st_size < 2 * 2**20 and member.file_size == 1536 * 2**20
    with zipfile.ZipFile(bomb).open("config.json") as stream:  # it really inflates to repeated characters
        assert stream.read(2**20) == b"a" * 2**20


def test_zip_bomb_refused_fast_and_small(bomb):
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="config.json inflates to 1,536.0 MiB"):
        check_keras_file(str(bomb))
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 2**20


def test_load_model_refuses_the_bomb_before_keras(bomb):
    from kzoo.engine.checkpoints import load_model

    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="decompression bomb"):
        load_model(str(bomb))
    assert time.perf_counter() - start < 1.0


def test_a_weights_member_compressed_beyond_any_model_file(tmp_path):
    # 200 MiB of zeros (what a huge zero-initialised tensor would be) is within the JSON bound but not the ratio
    path = write_zip_bomb(tmp_path / "w.keras", name="model.weights.h5", inflated=200 * 2**20, fill=b"\0")
    with pytest.raises(CheckpointError, match=r"model.weights.h5 inflates [\d,]+ times"):
        check_keras_archive(str(path))


def test_too_many_members(tmp_path):
    path = tmp_path / "many.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(MAX_MEMBERS + 1):
            archive.writestr(f"assets/{i}", b"")
    with pytest.raises(CheckpointError, match="10,001 files"):
        check_keras_archive(str(path))


def test_a_truncated_archive_is_reported_as_corrupt(tmp_path, bomb):
    path = tmp_path / "cut.keras"
    path.write_bytes(bomb.read_bytes()[:-30])
    with pytest.raises(CheckpointError, match="not a valid .keras file"):
        check_keras_archive(str(path))


def test_a_real_model_file_passes(tmp_path):
    from kzoo.summary import build

    path = build("lenet5", tmp_path / "lenet5.keras")
    names = [m.filename for m in check_keras_archive(path)]
    assert sorted(names) == ["config.json", "metadata.json", "model.weights.h5"]
    check_keras_file(path)


def test_weights_file_whose_datasets_declare_far_more_than_it_holds(tmp_path):
    import h5py

    path = tmp_path / "bomb.weights.h5"
    with h5py.File(path, "w") as h5file:  # 1 GiB of zeros, gzip-compressed into a few MB
        h5file.create_dataset("kernel", shape=(2**28,), dtype="float32", chunks=(2**22,), compression="gzip",
                              fillvalue=0.0)
        h5file["kernel"][: 2**22] = np.zeros(2**22, "float32")
    assert path.stat().st_size < 8 * 2**20
    with pytest.raises(CheckpointError, match="datasets declare 1,024.0 MiB"):
        check_weights_path(str(path))


def test_the_weights_bomb_inside_a_stored_archive_is_refused(tmp_path):
    """The stored member is read in place (``StoredMember``): the check sees the same declared bytes."""
    import h5py

    weights = tmp_path / "bomb.weights.h5"
    with h5py.File(weights, "w") as h5file:
        h5file.create_dataset("kernel", shape=(2**28,), dtype="float32", chunks=(2**22,), compression="gzip",
                              fillvalue=0.0)
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("config.json", "{}")
        archive.write(weights, "model.weights.h5")
    with pytest.raises(CheckpointError, match=r"model\.weights\.h5\): its datasets declare 1,024.0 MiB"):
        check_keras_file(str(path))


def test_a_stored_member_reads_like_zipfile_at_any_offset(tmp_path):
    from kzoo.engine.archive_guard import StoredMember

    data = np.random.default_rng(0).integers(0, 256, 100_000, dtype="uint8").tobytes()
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("first.json", "{}")
        archive.writestr(zipfile.ZipInfo("model.weights.h5"), data)  # a local header with its own name length
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        member = StoredMember(handle, archive.getinfo("model.weights.h5"))
        assert member.read() == data
        for offset, count in [(0, 10), (99_990, 50), (512, 4096), (50_000, 0), (100_000, 5), (7, 100_000)]:
            member.seek(offset)
            assert member.read(count) == data[offset:offset + count]
        member.seek(-3, 2)
        assert member.tell() == 99_997 and member.read() == data[-3:]
