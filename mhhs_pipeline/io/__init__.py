"""Storage through fsspec URLs (local folder by default, s3:// via s3fs) and the manifest."""
