"""The account before the stacks: the CDK bootstrap parameter and every published asset (as `cdk-assets` does)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import boto3

from tests.infrastructure.rehearsal.records import BOOTSTRAP_VERSION, BOOTSTRAP_VERSION_PARAMETER, RehearsalError


def bootstrap_account(region: str) -> None:
    """The parts of a CDK bootstrap the templates touch: the version parameter (the bucket comes with assets)."""
    boto3.client("ssm", region_name=region).put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )


def publish_assets(assembly_dir: Path, region: str) -> int:
    """Do what `cdk-assets` does for every `*.assets.json`: zip directories, copy files, into their bucket."""
    s3 = boto3.client("s3", region_name=region)
    buckets: set[str] = set()
    published = 0
    for manifest_path in sorted(assembly_dir.glob("*.assets.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("dockerImages"):
            raise RehearsalError(f"{manifest_path.name}: Docker image assets are not rehearsed")
        for asset in manifest.get("files", {}).values():
            source = assembly_dir / asset["source"]["path"]
            if asset["source"].get("packaging") == "zip" or source.is_dir():
                body = _zip_directory(source)
            else:
                body = source.read_bytes()
            for destination in asset["destinations"].values():
                bucket = destination["bucketName"]
                if bucket not in buckets:
                    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                        s3.create_bucket(Bucket=bucket)
                    buckets.add(bucket)
                s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
                published += 1
    return published


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    # Stored, not deflated: the layer is ~60 MB and the rehearsal only needs a valid archive.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()
