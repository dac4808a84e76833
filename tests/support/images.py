"""The local app images tests and benches deploy (v1, v2 healthy; v3 fails its health check)."""

from codeb_infra.sandbox.demo_app import (  # noqa: F401
    APP_PORT,
    IMAGE_REPOSITORY,
    STANDARD_IMAGES,
    TURNING_HEALTH_PATH,
    build_env_image,
    build_test_image,
    build_turning_image,
    ensure_images,
    image_reference,
)
