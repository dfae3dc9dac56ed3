"""The samples, one function each: (raw bytes, expected outcome, facts the parser must find)."""
from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from tests.mail.corpus.encode import DOCX, JPEG, PDF, PNG, b64, crlf, pct, qp, split_words, word

OFFICE = "jubao@example.gov.cn"
DATE = "Date: Tue, 01 Apr 2025 09:30:00 +0800"


def utf8_plain():
    body = "建议加强涉企会议管理，减少企业负担。\n会议通知应提前三天发出。\n"
    raw = f"""From: {word('张三', 'UTF-8')} <zhang.san@example.com>
To: {OFFICE}
Subject: {word('关于第5项整改的意见', 'UTF-8')}
{DATE}
Message-ID: <utf8-plain@corpus.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

{b64(body)}
"""
    return crlf(raw.encode()), "ingested", {
        "subject": "关于第5项整改的意见", "sender": "zhang.san@example.com", "sender_name": "张三",
        "text": "建议加强涉企会议管理，减少企业负担。\n会议通知应提前三天发出。", "item": 5, "reply": True}


def gbk_base64():
    subject = "反映第五项：朱镕基路段占道经营"
    body = "朱镕基路段的商户长期占道经营，喆昇公司门前尤其严重。"
    raw = f"""From: {word('李四', 'GBK')} <li.si@example.org>
To: {OFFICE}
Subject: {split_words(subject, 'GBK', 7)}
{DATE}
Message-ID: <gbk-base64@corpus.test>
MIME-Version: 1.0
Content-Type: text/plain; charset="GBK"
Content-Transfer-Encoding: base64

{b64(body, 'gbk')}
"""
    return raw.encode(), "ingested", {"subject": subject, "sender_name": "李四", "text": body, "item": 5}


def gb2312_qp():
    """Labelled GB2312 but holding GBK characters, as much real mail does."""
    subject = "事项12：堃园小区整改"
    body = "堃园小区（朱镕基路）外墙整改至今未完成。\n请尽快督办。"
    raw = f"""From: wang@example.com
To: {OFFICE}
Subject: {word(subject, 'gbk', 'Q').replace('=?gbk?', '=?gb2312?')}
{DATE}
Message-ID: <gb2312-qp@corpus.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=gb2312
Content-Transfer-Encoding: quoted-printable

{qp(body, 'gbk')}
"""
    return raw.encode(), "ingested", {"subject": subject, "text": body, "item": 12}


def big5_qp():
    subject = "關於第三項整改的意見"
    body = "臺灣同胞投資企業反映，第三項整改措施落實不到位。"
    raw = f"""From: {word('陳先生', 'big5')} <chen@example.com.tw>
To: {OFFICE}
Subject: {word(subject, 'big5')}
{DATE}
Message-ID: <big5-qp@corpus.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=big5
Content-Transfer-Encoding: quoted-printable

{qp(body, 'big5')}
"""
    return raw.encode(), "ingested", {"subject": subject, "sender_name": "陳先生", "text": body, "item": 3}


def raw_8bit_headers():
    head = f"From: 赵六 <zhao.liu@example.net>\nTo: {OFFICE}\nSubject: 意见建议（原始八位邮件头）\n{DATE}\n"
    body = "邮件头没有按标准编码，直接写了 GBK 字节。"
    raw = (head.encode("gbk") + b"Message-ID: <raw-8bit@corpus.test>\nMIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=gb18030\nContent-Transfer-Encoding: 8bit\n\n" + body.encode("gb18030"))
    return raw, "ingested", {"subject": "意见建议（原始八位邮件头）", "sender_name": "赵六", "text": body, "item": 0}


def nested_multipart():
    msg = EmailMessage()
    msg["From"] = "孙七 <sun.qi@example.com>"
    msg["To"] = OFFICE
    msg["Subject"] = "第 5 项：附上材料"
    msg["Date"] = "Wed, 02 Apr 2025 10:00:00 +0800"
    msg["Message-ID"] = "<nested@corpus.test>"
    msg.set_content("纯文本正文：第 5 项整改情况见附件。\n", charset="utf-8", cte="quoted-printable")
    msg.add_alternative("<html><body><p>HTML 正文：<b>第 5 项</b>整改情况见附件。</p>"
                        "<img src='cid:logo'></body></html>", subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo>")
    msg.add_attachment(PDF, "application", "pdf", filename=("utf-8", "", "举报材料.pdf"))
    jpeg = EmailMessage()
    jpeg.set_content(JPEG, "image", "jpeg")
    jpeg["Content-Disposition"] = f'attachment; filename="{word("现场照片.jpg", "UTF-8")}"'
    msg.attach(jpeg)
    msg.add_attachment(DOCX, "application", "vnd.openxmlformats-officedocument.wordprocessingml.document",
                       filename=("gbk", "", "情况说明.docx"))
    return msg.as_bytes(policy=SMTP), "ingested", {
        "text": "纯文本正文：第 5 项整改情况见附件。", "item": 5,
        "files": ["举报材料.pdf", "现场照片.jpg", "情况说明.docx"], "stored": ["举报材料.pdf", "现场照片.jpg"]}


def html_only_meta_gbk():
    html = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=gbk'>"
            "<title>标题不算正文</title><style>p { color: red }</style></head><body>"
            "<div>关于事项 7 的意见：</div><div>一、停车难&nbsp;&amp;&nbsp;收费乱；<br>二、&lt;夜间施工&gt;扰民。</div>"
            "<script>alert('不应出现')</script><p>镕&#x4e2d;&#20013;</p></body></html>")
    raw = (f"From: qian@example.com\nTo: {OFFICE}\nSubject: {word('意见', 'GBK')}\n{DATE}\n"
           "Message-ID: <html-only@corpus.test>\nMIME-Version: 1.0\nContent-Type: text/html\n"
           f"Content-Transfer-Encoding: base64\n\n{b64(html, 'gbk')}\n")
    return raw.encode(), "ingested", {
        "text": "关于事项 7 的意见：\n一、停车难 & 收费乱；\n二、<夜间施工>扰民。\n\n镕中中", "item": 7, "html_only": True}


def filename_forms():
    name1, name2, name3 = "朱镕基路材料.pdf", "现场图片.png", "补充说明.pdf"
    enc1 = pct(name1, "gbk")
    cut = enc1.index("%", len(enc1) // 2)
    raw = f"""From: zhou@example.com
To: {OFFICE}
Subject: {word('材料', 'UTF-8')}
{DATE}
Message-ID: <filenames@corpus.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==b=="

--==b==
Content-Type: text/plain; charset=utf-8

{"见附件三份。"}
--==b==
Content-Type: application/pdf
Content-Disposition: attachment;
 filename*0*=gb2312''{enc1[:cut]};
 filename*1*={enc1[cut:]}
Content-Transfer-Encoding: base64

{b64(PDF)}
--==b==
Content-Type: image/png; name="{word(name2, 'GB18030')}"
Content-Disposition: attachment; filename="{word(name2, 'GB18030')}"
Content-Transfer-Encoding: base64

{b64(PNG)}
--==b==
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''{pct(name3, 'utf-8')}
Content-Transfer-Encoding: base64

{b64(PDF)}
--==b==--
"""
    return crlf(raw.encode()), "ingested", {"files": [name1, name2, name3], "stored": [name1, name2, name3]}


def bounce():
    raw = f"""Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: {OFFICE}
Subject: Undelivered Mail Returned to Sender
{DATE}
Message-ID: <bounce@corpus.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="rep"

--rep
Content-Type: text/plain

The mail system could not deliver your message.
--rep
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Final-Recipient: rfc822; citizen@example.com
Action: failed
Status: 5.1.1
--rep
Content-Type: message/rfc822

From: {OFFICE}
Subject: ack

hello
--rep--
"""
    return raw.encode(), "quarantined", {"reason": "退信"}


def auto_reply():
    raw = f"""From: wu@example.com
To: {OFFICE}
Subject: {word('自动回复: 已收到您的来信', 'UTF-8')}
{DATE}
Message-ID: <auto-reply@corpus.test>
Auto-Submitted: auto-replied
Content-Type: text/plain; charset=utf-8

我正在休假，回来后回复。
"""
    return raw.encode(), "quarantined", {"reason": "自动回复"}


def autoreply_header():
    raw = (f"From: zheng@example.com\nTo: {OFFICE}\nSubject: Re: 受理回执\n{DATE}\n"
           "Message-ID: <x-autoreply@corpus.test>\nX-Autoreply: yes\nContent-Type: text/plain; charset=utf-8\n\n"
           "此邮箱不再使用。\n")
    return raw.encode(), "quarantined", {"reason": "自动回复"}


def bulk():
    raw = (f"From: news@example.com\nTo: {OFFICE}\nSubject: 每周资讯\n{DATE}\nMessage-ID: <bulk@corpus.test>\n"
           "Precedence: bulk\nContent-Type: text/plain; charset=utf-8\n\n本周资讯……\n")
    return raw.encode(), "quarantined", {"reason": "群发"}


def malformed_garbage():
    return bytes(range(256)) * 4 + b"\x00\xff" * 100, "quarantined", {"reason": "不是有效的邮件"}


def malformed_boundary():
    raw = (f"From: feng@example.com\nTo: {OFFICE}\nSubject: broken\n{DATE}\nMessage-ID: <broken@corpus.test>\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"never-used\"\n\n"
           "--wrong-boundary\nContent-Type: text/plain\n\nbody\n--wrong-boundary--\n")
    return raw.encode(), "quarantined", {"reason": "结构损坏"}


def many_parts(count: int = 2000):
    parts = "".join(f"--p\nContent-Type: text/plain\n\npart {n}\n" for n in range(count))
    raw = (f"From: chu@example.com\nTo: {OFFICE}\nSubject: many\n{DATE}\nMessage-ID: <many-parts@corpus.test>\n"
           f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=p\n\n{parts}--p--\n")
    return raw.encode(), "quarantined", {"reason": "MIME 部分过多"}


def deep_nesting(levels: int = 40):
    opening = "".join(f'Content-Type: multipart/mixed; boundary="d{n}"\n\n--d{n}\n' for n in range(levels))
    closing = "".join(f"--d{n}--\n" for n in reversed(range(levels)))
    raw = (f"From: wei@example.com\nTo: {OFFICE}\nSubject: deep\n{DATE}\nMessage-ID: <deep@corpus.test>\n"
           f"MIME-Version: 1.0\n{opening}Content-Type: text/plain\n\ninside\n{closing}")
    return raw.encode(), "quarantined", {"reason": "嵌套过深"}


def oversized(size: int = 1536 * 1024):
    raw = (f"From: jiang@example.com\nTo: {OFFICE}\nSubject: {word('超大附件', 'UTF-8')}\n{DATE}\n"
           "Message-ID: <oversized@corpus.test>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
           "--o\nContent-Type: text/plain; charset=utf-8\n\nbig\n--o\nContent-Type: application/pdf\n"
           "Content-Transfer-Encoding: base64\n\n" + b64(PDF + bytes(size)) + "\n--o--\n")
    return raw.encode(), "quarantined", {"reason": "邮件过大", "subject": "超大附件"}


def no_reply_address():
    raw = (f"From: =?UTF-8?B?5Yy/5ZCN576k5LyX?= <not-an-address>\nTo: {OFFICE}\nSubject: 匿名反映\n{DATE}\n"
           "Message-ID: <no-address@corpus.test>\nContent-Type: text/plain; charset=utf-8\n\n"
           "我不留联系方式，反映第十四项的问题。\n")
    return raw.encode(), "ingested", {"item": 14, "reply": False, "sender_name": "匿名群众"}


def attachment_only():
    raw = (f"From: han@example.com\nTo: {OFFICE}\n{DATE}\nMessage-ID: <attachment-only@corpus.test>\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: application/pdf\n"
           "Content-Disposition: attachment; filename=scan.pdf\nContent-Transfer-Encoding: base64\n\n"
           f"{b64(PDF)}\n--a--\n")
    return raw.encode(), "ingested", {"stored": ["scan.pdf"], "text": ""}


def forwarded():
    inner = (f"From: yang@example.com\nSubject: {word('原始举报', 'GBK')}\n"
             "Content-Type: text/plain; charset=gbk\nContent-Transfer-Encoding: base64\n\n"
             f"{b64('被转发邮件的正文：第九项整改不实。', 'gbk')}\n")
    raw = (f"From: qin@example.com\nTo: {OFFICE}\nSubject: Fw: 原始举报\n{DATE}\nMessage-ID: <forwarded@corpus.test>\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=f\n\n"
           "--f\nContent-Type: text/plain; charset=utf-8\n\n"
           f"转给你们。\n--f\nContent-Type: message/rfc822\n\n{inner}\n--f--\n")
    return raw.encode(), "ingested", {"contains": ["转给你们。", "原始举报", "被转发邮件的正文：第九项整改不实。"],
                                      "item": 9}


SAMPLES = (utf8_plain, gbk_base64, gb2312_qp, big5_qp, raw_8bit_headers, nested_multipart, html_only_meta_gbk,
           filename_forms, bounce, auto_reply, autoreply_header, bulk, malformed_garbage, malformed_boundary,
           many_parts, deep_nesting, oversized, no_reply_address, attachment_only, forwarded)


def build_samples() -> dict[str, tuple[bytes, str, dict]]:
    return {f.__name__: f() for f in SAMPLES}
