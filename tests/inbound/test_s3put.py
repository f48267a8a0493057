"""The blob store's signed fast path: what it stores boto3 reads back byte for byte; a refusal is explained;
configurations it does not serve go through boto3."""

from __future__ import annotations

import hashlib
import os

import pytest

from mailboxes import blobs, s3put
from mailboxes.blobs import _s3, _storage

pytestmark = [pytest.mark.django_db]


@pytest.mark.parametrize("size", [0, 70_000])
def test_fast_path_stores_what_boto3_reads_back(s3_storage, size):
    storage = _storage()
    assert s3put.for_storage(storage) is not None, (
        "the rig's SeaweedFS is the plain case the fast path serves"
    )
    data = os.urandom(size)
    blob = blobs.put(data)
    client, bucket = _s3(storage)
    head = client.head_object(Bucket=bucket, Key=blob.key)
    assert head["ContentLength"] == size
    assert client.get_object(Bucket=bucket, Key=blob.key)["Body"].read() == data
    assert blob.sha256 == hashlib.sha256(data).hexdigest()


def test_a_refused_upload_says_what_the_store_answered(s3_storage):
    storage = _storage()
    fast = s3put.for_storage(storage)
    wrong = s3put.FastPut(fast.endpoint, "us-east-1", storage.access_key, "not-the-secret", None, None)
    data = b"hello"
    with pytest.raises(
        s3put.UploadError, match=r"answered 403 to the upload of blobs/x .*SignatureDoesNotMatch"
    ):
        wrong.put(storage.bucket_name, "blobs/x", data, hashlib.sha256(data).hexdigest())


def test_configurations_it_does_not_serve_go_through_boto3(s3_storage):
    storage = _storage()
    for name, value in [
        ("addressing_style", "virtual"),
        ("endpoint_url", None),
        ("default_acl", "public-read"),
        ("access_key", None),
    ]:
        original = getattr(storage, name)
        setattr(storage, name, value)
        try:
            assert s3put.for_storage(storage) is None, name
        finally:
            setattr(storage, name, original)
