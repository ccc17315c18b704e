"""The template of the minutes PDF (biên bản hội chẩn từ xa): every heading and label, in one file
a hospital can adapt to its own form (docs/protocol.md, "Minutes as a PDF").

Thông tư 49/2017/TT-BYT asks for a biên bản hội chẩn following its Phụ lục I, whose field list is
not published where we could read it: this follows the usual structure of Vietnamese consult
minutes (../shared/regulation.md). Change the texts here; the order of the parts is `PARTS`.
`server/actions/minutes_pdf.py` lays them out and fills them in.
"""

from __future__ import annotations

from typing import Final

# The document code after the number: "Số: 12/BB-HCTX" (biên bản hội chẩn từ xa).
NUMBER_CODE: Final = "BB-HCTX"
NUMBER_LINE: Final = "Số: {number}/{code}"

NATION: Final = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO: Final = "Độc lập - Tự do - Hạnh phúc"
# "{place}, ngày 05 tháng 03 năm 2025": the issuing hospital's province (or its name), the date
# the consult started (or was asked, if it never started).
PLACE_DATE: Final = "{place}, ngày {day:02d} tháng {month:02d} năm {year}"
TITLE: Final = "BIÊN BẢN HỘI CHẨN TỪ XA"
# The footer of every page: the number, the patient's reference and the page.
FOOTER: Final = "Biên bản số {number}/{code} · Mã người bệnh: {ref} · Trang {page}/{pages}"

# The parts in order, each with its heading. Their content is fixed by the key.
PARTS: Final[tuple[tuple[str, str], ...]] = (
    ("time", "I. THỜI GIAN, HÌNH THỨC HỘI CHẨN"),
    ("members", "II. THÀNH PHẦN THAM GIA"),
    ("patient", "III. THÔNG TIN NGƯỜI BỆNH"),
    ("summary", "IV. TÓM TẮT BỆNH ÁN"),
    ("notes", "V. Ý KIẾN THẢO LUẬN"),
    ("attachments", "VI. TÀI LIỆU ĐÍNH KÈM"),
    ("conclusion", "VII. KẾT LUẬN"),
    ("result", "VIII. KẾT QUẢ BÁO LẠI"),
)

LABELS: Final = {
    "start": "Bắt đầu",
    "end": "Kết thúc",
    "form": "Hình thức",
    "form_value": "Hội chẩn từ xa (trực tuyến, có hình ảnh và âm thanh)",
    "points": "Các điểm cầu",
    "specialty": "Chuyên khoa",
    "urgency": "Mức độ",
    "chair": "Chủ trì",
    "secretary": "Thư ký",
    "members_table": "Họ và tên|Chức danh|Chuyên khoa|Đơn vị|Thời gian trong cuộc gọi",
    "not_in_call": "không vào cuộc gọi",
    "patient_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "age": "Tuổi",
    "sex": "Giới tính",
    "national_id": "Số định danh cá nhân (CCCD)",
    "insurance_id": "Số thẻ BHYT",
    "address": "Địa chỉ",
    "ref": "Mã người bệnh tại bệnh viện",
    "no_identity": "Chưa ghi nhận thông tin định danh người bệnh trong hồ sơ.",
    "consent": "Đồng ý của người bệnh",
    "consent_state": "Tình trạng đồng ý",
    "consent_given_by": "Người đồng ý",
    "consent_method": "Hình thức đồng ý",
    "consent_scopes": "Đồng ý cho",
    "consent_note": "Ghi chú về đồng ý",
    "consent_recorded": "Người ghi nhận",
    "consent_withdrawn": "Đã rút lại đồng ý",
    "consent_withdrawn_by": "Người ghi nhận việc rút",
    "consent_none": "Chưa ghi nhận đồng ý của người bệnh.",
    "consent_waived": "Cấp cứu, tiến hành khi chưa có đồng ý; lý do",
    "consent_history": "Các lần ghi nhận",
    "consent_history_line": "{when}: {what} — {who}",
    "no_notes": "Không có ý kiến ghi nhận.",
    "amended": "(đã sửa)",
    "replaced": "Nội dung trước khi sửa ({who}, {when}):",
    "no_attachments": "Không có tài liệu đính kèm.",
    "attachment_line": "{name} — {who}, {when}, {size}",
    "outcome": "Hướng xử trí",
    "conclusions": "Kết luận",
    "no_outcome": "Chưa kết luận",
    "result": "Kết quả",
    "result_note": "Ghi chú",
    "result_by": "Người báo",
    "no_result": "Tuyến dưới chưa báo lại kết quả.",
    "sign_hint": "(Ký, ghi rõ họ tên)",
    "empty": "—",
    # Digital signatures (server/actions/signatures.py): the version signed, the audit chain's
    # head it anchors, the versions signed before it, and notes written after the lock.
    "version": "Phiên bản {version}",
    "chain": "Nhật ký kiểm toán tại thời điểm lập: mục {seq}",
    "chain_hash": "Mã băm (SHA-256) của mục: {hash}",
    "earlier": "Các phiên bản đã ký trước",
    "earlier_line": "Phiên bản {version}: {signers} (SHA-256 {sha256})",
    "addendum": "(Bổ sung sau khi biên bản đã ký)",
}

# Who signed a version of the minutes, in what role (server/policy/signing.py).
SIGNER_ROLES: Final = {"chair": "Chủ trì", "secretary": "Thư ký", "member": "Thành viên"}
# What a digital signature shows in the chair's or the secretary's block: the name on the
# signer's certificate and when they signed (Vietnam time).
SIGNED_STAMP: Final = "Đã ký số bởi:\n%(signer)s\nNgày ký: %(when)s"

# Chức danh: users carry no title of their own yet; the role stands in for it.
TITLES: Final = {
    "specialist": "Bác sĩ chuyên khoa tuyến trên",
    "clinician": "Bác sĩ tuyến dưới",
    "supervisor": "Cán bộ quản lý",
    "admin": "Quản trị",
}
SEX: Final = {
    "male": "Nam",
    "female": "Nữ",
    "other": "Khác",
    "unknown": "Không rõ",
    "M": "Nam",
    "F": "Nữ",
    "O": "Khác",
    "U": "Không rõ",
}
# The patient's consent (the contract's `consult.consent`): who gave it, how, to what.
CONSENT_GIVEN_BY: Final = {"patient": "Người bệnh", "relative": "Người nhà", "guardian": "Người giám hộ"}
CONSENT_METHODS: Final = {"verbal": "Bằng lời", "written": "Bằng văn bản", "electronic": "Điện tử"}
CONSENT_SCOPES: Final = {"consult": "hội chẩn từ xa", "recording": "ghi hình buổi hội chẩn"}
RESULTS: Final = {
    "recovered": "Khỏi bệnh",
    "improving": "Đỡ, đang theo dõi",
    "transferred": "Đã chuyển tuyến",
    "died": "Tử vong",
    "other": "Khác",
}
