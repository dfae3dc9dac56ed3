"""What a handler sees of the citizen's identity."""
import pytest

from feedback_app.core.masking import identity_of, mask_address, mask_email, mask_name, mask_phone


@pytest.mark.parametrize("fn, value, masked", [
    (mask_name, "张三", "张*"),
    (mask_name, "欧阳修文", "欧***"),
    (mask_phone, "+8613800138000", "138****8000"),
    (mask_phone, "+862082378781", "208***8781"),
    (mask_email, "zhangsan@example.com", "z***@example.com"),
    (mask_email, "用户@例子.中国", "用***@例子.中国"),
    (mask_address, "黄埔区香雪三路1号区纪委监委", "黄埔区香****"),
    (mask_name, None, None),
])
def test_masks(fn, value, masked):
    assert fn(value) == masked


def test_identity_of_masks_everything_or_nothing():
    class S:
        name, phone, email, address = "李四", "+8613912345678", "lisi@example.com", "广州市黄埔区某路100号"

    shown = identity_of(S, masked=True)
    assert shown.masked and shown.name != "李四" and "13912345678" not in shown.phone
    assert "lisi@" not in shown.email and "100号" not in shown.address
    plain = identity_of(S, masked=False)
    assert (plain.name, plain.phone, plain.email, plain.address) == (S.name, S.phone, S.email, S.address)
