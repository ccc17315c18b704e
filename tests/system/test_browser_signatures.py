"""In the browser: the admin uploads a specialist's signing certificate; on the record page the
specialist at Xanh Pôn gives the PIN in a labelled field and sees their signature, valid."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.conftest import StartInstance
from tests.system import pki as test_pki
from tests.system.browsing import shot, signed_in
from tests.system.test_signatures import ended


async def test_the_admin_uploads_a_certificate_and_the_chair_signs_with_the_pin(
    start_instance: StartInstance, browser: Browser, clients, tmp_path: Path
) -> None:
    pki = test_pki.make(tmp_path)
    instance = await start_instance(SIGNING_TRUST_ROOTS=str(pki.roots_pem))
    consult, _, _ = await ended(clients, instance)
    cid = consult["id"]
    p12 = tmp_path / "duc.p12"
    p12.write_bytes(pki.files["xanhpon.surgeon"])

    admin = await signed_in(browser, instance, "admin")
    await admin.evaluate("location.hash = '#/admin'")
    row = admin.locator(f"tr[data-user='{consult['specialist']['id']}']")
    await row.locator("summary", has_text="Chứng thư số").click()
    name = consult["specialist"]["name"]
    await row.get_by_label(f"Tệp chứng thư số (.p12) của {name}").set_input_files(str(p12))
    await row.get_by_label(f"Mã PIN của chứng thư số của {name}").fill(test_pki.PIN)
    await row.get_by_role("button", name="Tải lên chứng thư số").click()
    await row.locator("[role=status]:has-text('Đã lưu chứng thư số')").wait_for()

    surgeon = await signed_in(browser, instance, "xanhpon.surgeon")
    await surgeon.evaluate(f"location.hash = '#/record/{cid}'")
    await surgeon.get_by_label("Mã PIN chữ ký số").fill("0000")
    await surgeon.get_by_role("button", name="Ký số biên bản").click()
    await surgeon.locator("[data-form=sign] .error:has-text('Sai mã PIN')").wait_for()
    await surgeon.get_by_label("Mã PIN chữ ký số").fill(test_pki.PIN)
    await surgeon.get_by_role("button", name="Ký số biên bản").click()
    signed = surgeon.locator(".signatures li[data-role=chair]")
    await signed.wait_for()
    assert "hợp lệ" in await signed.inner_text()
    assert await surgeon.locator("[data-form=sign]").count() == 0  # signed: no PIN asked again
    await shot(surgeon, "record-signed")
