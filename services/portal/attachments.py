"""A reporter's files, checked and cleaned before anything is sent: the type by the content's
first bytes (never the name or the browser's word), the size and the count, and an image's
metadata (EXIF with its GPS position and camera, XMP, comments) removed by decoding the
picture and encoding it anew. The portal does this, not intake: decoding a stranger's image
is the riskiest step, and the public portal holds no key that opens anything, while intake
holds the contact key. Intake checks the type and size again and keeps the file sealed.

A PDF is checked by its signature and kept as sent (see README: what stays in a PDF).
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from schemas.attachment import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, AttachmentType, sniffed

MAX_PIXELS = 60_000_000
"""A phone's largest photos are under 50 megapixels; more is a decompression bomb."""
_FORMATS = {AttachmentType.JPEG: "JPEG", AttachmentType.PNG: "PNG", AttachmentType.WEBP: "WEBP"}
WRONG_TYPE = "只接受 JPEG、PNG、WebP 图片或 PDF 文件（按文件内容识别）"
TOO_LARGE = f"每个文件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB"
TOO_MANY = f"最多上传 {MAX_ATTACHMENTS} 个文件"
UNREADABLE = "图片无法读取或尺寸过大，请换一张"


class AttachmentRefusedError(ValueError):
    """A file that cannot be taken; the reason is worded for the reporter."""


@dataclass(frozen=True)
class Cleaned:
    content_type: AttachmentType
    content: bytes


def clean(content: bytes) -> Cleaned:
    """The file as it will be kept: an image re-encoded without its metadata, a PDF as is."""
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise AttachmentRefusedError(TOO_LARGE)
    kind = sniffed(content)
    if kind is None:
        raise AttachmentRefusedError(WRONG_TYPE)
    if not kind.is_image:
        return Cleaned(kind, content)
    cleaned = _reencoded(content, kind)
    if len(cleaned) > MAX_ATTACHMENT_BYTES:
        raise AttachmentRefusedError(TOO_LARGE)
    return Cleaned(kind, cleaned)


def _reencoded(content: bytes, kind: AttachmentType) -> bytes:
    """The picture alone, upright (the EXIF orientation applied before EXIF goes), in its own
    format; the colour profile stays (colours, not a person)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                if image.format != _FORMATS[kind] or image.width * image.height > MAX_PIXELS:
                    raise AttachmentRefusedError(UNREADABLE)
                upright = ImageOps.exif_transpose(image)
                profile = image.info.get("icc_profile")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        if isinstance(error, AttachmentRefusedError):
            raise
        raise AttachmentRefusedError(UNREADABLE) from None
    # What Pillow read beside the pixels (EXIF, XMP, comments, text chunks) must not be
    # written back; a palette's transparency is part of the picture.
    upright.info = {k: v for k, v in upright.info.items() if k == "transparency"}
    out = io.BytesIO()
    options: dict[str, object] = {"icc_profile": profile} if profile else {}
    if kind is AttachmentType.JPEG:
        upright = upright if upright.mode in ("RGB", "L", "CMYK") else upright.convert("RGB")
        options["quality"] = 90
    elif kind is AttachmentType.WEBP:
        options["quality"] = 90
    upright.save(out, format=_FORMATS[kind], **options)
    return out.getvalue()


def cleaned_all(files: list[bytes]) -> list[Cleaned]:
    """Each file cleaned, or the first refusal (raised with the file's position)."""
    if len(files) > MAX_ATTACHMENTS:
        raise AttachmentRefusedError(TOO_MANY)
    cleaned = []
    for position, content in enumerate(files, start=1):
        try:
            cleaned.append(clean(content))
        except AttachmentRefusedError as refused:
            raise AttachmentRefusedError(f"第 {position} 个文件：{refused}") from None
    return cleaned
