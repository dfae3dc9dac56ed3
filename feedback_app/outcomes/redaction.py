"""Removing personal details from free text before it is published.

Two layers:

1. The details the submission itself holds (name, phone, e-mail, address) are removed wherever they
   appear, in any spelling: with spaces or dashes between the digits, full-width digits and letters,
   a +86 / 0086 prefix, digits written as Chinese numerals (一三八…), an e-mail written with # or (at).
2. Patterns of personal details anyone may have typed: mobile and fixed-line numbers, e-mail
   addresses, ID card numbers (18 digits with a final X, or 15 digits), QQ / WeChat ids, long
   account numbers, licence plates, Chinese addresses (…省…市…区…路…号…栋…单元…室, …村…组…号,
   …小区…栋…), and names introduced as names (我叫…, 本人…, 姓名：…, 联系人：…) or followed by a title
   (…先生, …局长).

``mask_text`` applies both and returns text for a person to check; ``problems`` is the check the
server makes before publishing: it refuses text that still holds any detail of the submission, or any
phone, e-mail or ID card pattern. Names and addresses typed by others are not refused by pattern,
because place names and ordinary words look alike: the reviewer reads the text side by side with the
original and decides.

Every search runs on a copy of the text folded one character for one character (full-width to ASCII,
Chinese numerals to digits), so positions found in the copy are positions in the original, and the
published text keeps its own punctuation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDERS = {
    "name": "某",  # names keep their surname: 张三 → 张某, 王小明 → 王某某
    "phone": "【电话已隐去】",
    "email": "【邮箱已隐去】",
    "id_card": "【身份证号已隐去】",
    "address": "【地址已隐去】",
    "contact": "【联系方式已隐去】",
    "number": "【号码已隐去】",
    "plate": "【车牌号已隐去】",
}
KIND_WORDS = {
    "name": "姓名",
    "phone": "电话号码",
    "email": "电子邮箱",
    "id_card": "身份证号",
    "address": "地址",
    "contact": "QQ或微信号",
    "number": "长串号码",
    "plate": "车牌号",
}
REFUSED_PATTERNS = frozenset({"phone", "email", "id_card"})

# The most common single surnames (about 9 in 10 people), then the compound ones.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向"
    "汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕"
    "单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦"
    "褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明"
    "佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅"
    "屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修"
    "邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡"
    "富尧闭由"
)
COMPOUND_SURNAMES = {
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
    "令狐", "端木", "独孤", "南宫", "西门", "轩辕", "钟离", "闻人", "赫连", "澹台", "公冶", "宗政", "濮阳",
    "太叔", "申屠", "司空", "万俟", "呼延", "拓跋", "百里", "东郭", "第五",
}
# Characters that end a name rather than continue it (verbs, particles, place and office words).
NOT_IN_NAME = set(
    "区市县镇乡村街路道局委办厅部处科所站队院会司厂店场校园的了在是和与及也都已将要想希认说反映举投"
    "居民众企业公人员工们家户某×*＊：:，,。、；;！？?（）()多少等向于对把被给为从到去来这那其此个位名些"
    "年月日号栋室楼层单元元次件项条份第电话手机邮箱地址联系通讯信箱身份证附近边旁内外上下中前后里总副"
)
TITLES = (
    "总书记", "副局长", "局长", "副主任", "主任", "副书记", "书记", "副科长", "科长", "处长", "所长", "站长", "队长",
    "组长", "总经理", "经理", "董事长", "老板", "会长", "院长", "校长", "社长", "部长", "厅长", "主席",
    "先生", "女士", "小姐", "老师", "师傅", "同志", "医生", "律师", "阿姨", "大爷",
)
NAME_INTROS = (
    "我的名字叫", "我的名字是", "我名叫", "我叫", "我是", "名叫", "本人", "姓名", "联系人", "署名", "签名",
    "落款", "反映人", "举报人", "来信人", "来访人", "申请人", "投诉人", "当事人",
)
PHONE_WORDS = ("电话", "手机", "座机", "号码", "联系", "致电", "拨打", "热线", "来电", "打", "tel", "call")

_CN_DIGITS = {"零": "0", "〇": "0", "○": "0", "Ｏ": "0", "一": "1", "幺": "1", "二": "2", "三": "3",
              "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}


def fold(text: str) -> str:
    """Full-width ASCII to ASCII and the ideographic space to a space, one character for one."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif ch in "\u3000\u00a0":
            out.append(" ")
        elif ch in "—–－‐‑":
            out.append("-")
        else:
            out.append(ch)
    return "".join(out)


def spoken_digits(folded: str) -> str:
    """Chinese numerals to digits, other digits to "#": numbers read out digit by digit (一三八…).

    Kept apart from written digits, so that 13800138000一直 stays a phone number and 一 a word.
    """
    return "".join(_CN_DIGITS.get(ch) or ("#" if ch.isascii() and ch.isdigit() else ch) for ch in folded)


def digits_of(value: str) -> str:
    return "".join(ch for ch in fold(value) if ch.isascii() and ch.isdigit())


# ---------- the details a submission holds ----------

@dataclass(frozen=True)
class Personal:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None

    @classmethod
    def of(cls, submission) -> "Personal":
        return cls(submission.name, submission.phone, submission.email, submission.address)


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str
    replacement: str
    own: bool  # a detail the submission holds

    @property
    def size(self) -> int:
        return self.end - self.start


def _spaced(chars: str, flags=0) -> re.Pattern:
    """Match ``chars`` with any whitespace between them."""
    return re.compile(r"\s*".join(re.escape(c) for c in chars), flags)


def _surname_of(name: str) -> str:
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    return name[0] if _is_cjk(name[0]) else ""


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _masked_name(name: str) -> str:
    surname = _surname_of(name)
    rest = max(1, min(2, len(name) - len(surname)))
    return (surname + "某" * rest) if surname else "某人"


def _name_is_identifying(name: str | None) -> bool:
    if not name:
        return False
    compact = "".join(name.split())
    if len(compact) < 2:
        return False
    surname = _surname_of(compact)
    rest = compact[len(surname):]
    return not (rest and all(ch in "某×xX*＊" for ch in rest))


def national_number(phone: str | None) -> str | None:
    """The digits of a phone number without country code and trunk 0: 13800138000, 2082378781."""
    if not phone:
        return None
    digits = digits_of(phone)
    if fold(phone).lstrip().startswith("+86") or (digits.startswith("86") and len(digits) >= 12):
        digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    digits = digits.lstrip("0")
    return digits if len(digits) >= 5 else None


def local_part(national: str) -> str | None:
    """The subscriber number of a fixed line (the part after the area code), or None for a mobile."""
    if re.fullmatch(r"1[3-9]\d{9}", national):
        return None
    area = 2 if national.startswith(("10", "2")) else 3
    local = national[area:]
    return local if len(local) >= 7 else None


def _digit_sequence(digits: str, gap: int = 3) -> str:
    return r"(?<!\d)" + rf"\D{{0,{gap}}}".join(digits) + r"(?!\d)"


_ADMIN = r"(?:省|自治区|市|自治州|州|盟|区|县|旗|镇|乡|街道)"


def address_fragments(address: str | None) -> list[str]:
    """The stored address and its more specific parts, longest first: for 广州市黄埔区丰乐北路38号3栋502房
    also 黄埔区丰乐北路38号3栋502房, 丰乐北路38号3栋502房 and 丰乐北路38号.

    Only parts below the district level count: 黄埔区 alone is not a personal detail.
    """
    if not address:
        return []
    compact = "".join(fold(address).split())
    found: list[str] = []
    rest = compact
    while rest:
        if _SPECIFIC.search(rest) and len(rest) >= 4:
            found.append(rest)
        m = _ADMIN_PREFIX.match(rest)
        if m is None or m.end() >= len(rest):
            break
        rest = rest[m.end():]
    if found:
        for pattern in _HOUSE_PARTS:
            m = pattern.match(found[-1])
            if m and m.group(1) not in found and len(m.group(1)) >= 4:
                found.append(m.group(1))
    return sorted(found, key=len, reverse=True)


_ADMIN_PREFIX = re.compile(r"^.+?(?:自治区|自治州|街道|省|市|(?<![小社园校景营厂])区|县|旗|镇|乡)")
_HOUSE_PARTS = (
    re.compile(r"^(.+?(?:大道|大街|路|街|巷|弄|胡同)[0-9一二三四五六七八九十百]+号)"),
    re.compile(r"^(.+?(?:小区|花园|苑|大厦|公寓|新村|村)[0-9一二三四五六七八九十]+(?:栋|幢|座|号楼|组))"),
)
_SPECIFIC = re.compile(r"路|街(?!道)|巷|弄|胡同|村|小区|号|栋|幢|室|单元|苑|花园|大厦|公寓|社区|组|[0-9]")


def _own_findings(folded: str, scans: tuple[str, ...], personal: Personal) -> list[Finding]:
    found: list[Finding] = []

    def add(pattern: re.Pattern, kind: str, replacement: str, text: str) -> None:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                found.append(Finding(m.start(), m.end(), kind, replacement, True))

    if _name_is_identifying(personal.name):
        name = "".join(fold(personal.name).split())
        add(_spaced(name, re.IGNORECASE), "name", _masked_name(name), folded)
    national = national_number(personal.phone)
    if national:
        local = local_part(national)
        prefix = r"(?:(?:\+|00)\s*86\D{0,3})?" + (r"(?:\(?0\)?\D{0,2})?" if local else "")
        for scan in scans:
            add(re.compile(prefix + _digit_sequence(national)), "phone", PLACEHOLDERS["phone"], scan)
            if local:
                add(re.compile(_digit_sequence(local, gap=2)), "phone", PLACEHOLDERS["phone"], scan)
    if personal.email and "@" in personal.email:
        email = "".join(fold(personal.email).split()).lower()
        local_name, domain = email.rsplit("@", 1)
        at = r"\s*(?:@|#|\(at\)|\[at\]|\s+at\s+)\s*"
        dot = r"\s*(?:\.|。|\(dot\)|\[dot\]|\s+dot\s+)\s*"
        pattern = (r"\s*".join(map(re.escape, local_name)) + at
                   + dot.join(r"\s*".join(map(re.escape, part)) for part in domain.split(".")))
        add(re.compile(pattern, re.IGNORECASE), "email", PLACEHOLDERS["email"], folded)
        if len(local_name) >= 5:
            add(re.compile(r"(?<![A-Za-z0-9])" + r"\s*".join(map(re.escape, local_name)) + r"(?![A-Za-z0-9])",
                           re.IGNORECASE), "email", PLACEHOLDERS["email"], folded)
    for fragment in address_fragments(personal.address):
        add(_spaced(fragment, re.IGNORECASE), "address", PLACEHOLDERS["address"], folded)
    return found


# ---------- patterns ----------

_C = r"[\u4e00-\u9fff]"
# Characters that do not begin or continue a place name (particles, and verbs met before addresses).
_STOP = "在住是于的我家到从向和与及往去来了对把被给为址请该这那其此有没不也都就还又很个某映位靠近附旁边经过途沿达至时之"
_N = rf"(?:(?![{_STOP}]){_C})"
_ROAD = r"(?:大道|大街|路|街(?!道)|巷|弄|胡同)"
_PLACE = r"(?:小区|花园|家园|新村|新城|公寓|大厦|广场|苑|村|社区|屯|组|工业园|园区)"
_UNIT = (r"(?:[0-9]+(?:号楼|号院|号之[0-9]+|号|栋|幢|座|单元|楼|层|室|户|房|弄|巷|组|铺|档)"
         r"|[一二三四五六七八九十百零〇]+(?:号楼|号|栋|幢|单元|组))")
_DASHED = r"[0-9]+(?:-[0-9]+){1,3}(?:室|房|号)?"
# Atomic groups: each place name is the shortest run ending in a suffix, and is not tried again
# shorter or longer (which would make the search exponential on text like 路路路…).
ADDRESS_RE = re.compile(
    rf"(?>{_N}{{1,10}}?(?:{_ADMIN}|{_ROAD}|{_PLACE})){{1,6}}\s?(?>{_UNIT}\s?-?\s?){{1,5}}"
    rf"|(?>{_N}{{1,10}}?(?:{_ROAD}|{_PLACE})){{1,6}}\s?{_DASHED}"
    r"|(?:[0-9]+(?:号楼|栋|幢|座|单元|楼|层|室|户|房)){2,5}"
)
ADDRESS_INTRO_RE = re.compile(
    r"(?:住址|家住|住在|现住|居住在|居住于|住于|通信地址|通讯地址|联系地址|家庭地址|地址)\s*[:：是为在]?\s*"
    r"([^，。；;,.\n！!？?（）()]{3,40})"
)
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*\s*(?:@|\(at\)|\[at\]|#)\s*"
    r"[A-Za-z0-9\-]+(?:\s*(?:\.|。|\(dot\)|\[dot\])\s*[A-Za-z0-9\-]+)*\s*(?:\.|。|\(dot\)|\[dot\])\s*[A-Za-z]{2,}",
    re.IGNORECASE,
)
# Any other address with an @ (internationalised ones: 用户@例子.中国): the word around it.
LOOSE_EMAIL_RE = re.compile(r"[\w.%+\-]{1,20}\s*@\s*[\w\-]+(?:\.[\w\-]+)+")
CONTACT_RE = re.compile(
    r"(?:qq|微信|wechat|weixin|vx|wx)\s*(?:号码|号)?\s*[:：是为]?\s*([A-Za-z][A-Za-z0-9_\-]{5,19}|[0-9]{5,12})",
    re.IGNORECASE,
)
PLATE_RE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z]\s?[A-Z0-9]{4,5}[A-Z0-9挂学警]?"
                      r"(?![A-Za-z0-9])")
# Digits with up to three separators between them, and the + or ( before them.
NUMBER_RUN_RE = re.compile(r"\(?(?:(?:\+|00)\s*)?\(?\d(?:[\s\-.·()/]{0,3}\d)*(?:[Xx](?![A-Za-z]))?")
DATE_RE = re.compile(r"(?<!\d)(?:19|20)\d{2}\s*[-/.]\s*(?:0?[1-9]|1[0-2])\s*[-/.]\s*(?:0?[1-9]|[12]\d|3[01])(?!\d)"
                     r"|(?<!\d)(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?!\d)")
UNIT_AFTER = re.compile(r"\s*(?:元|万|亿|千|百|平方|米|公里|千米|吨|户|人|件|次|个|%|％|年|月|日|天|小时|分|秒|岁|斤|"
                        r"公斤|亩|家|项|条|辆|份|期|届|批|倍|kg|km|m\b)")


def _classify_number(run: str, digits: str, before: str, after: str) -> str | None:
    """What a run of digits is: phone, id_card, number, or None (an ordinary number)."""
    ends_x = run.rstrip()[-1:] in ("X", "x")
    if (ends_x and len(digits) == 17) or (not ends_x and len(digits) == 18):
        return "id_card"
    plus = run.lstrip().startswith(("+", "00"))
    national = digits
    if digits.startswith("0086"):
        national, plus = digits[4:], True
    elif plus and digits.startswith("86"):
        national = digits[2:]
    elif re.fullmatch(r"861[3-9]\d{9}", digits):
        national, plus = digits[2:], True
    if re.fullmatch(r"1[3-9]\d{9}", national):
        return "phone"
    if re.fullmatch(r"0[1-9]\d{8,10}", national) or (plus and re.fullmatch(r"[1-9]\d{8,10}", national)):
        return "phone"
    if re.fullmatch(r"[48]00\d{7}", national):  # a company's service line
        return None
    unit_follows = UNIT_AFTER.match(after) is not None
    if len(digits) == 15 and not unit_follows:
        return "id_card"
    if re.fullmatch(r"[2-9]\d{6,7}", digits) and not unit_follows:
        grouped = re.search(r"\d{3,4}[\s\-]\d{4}$", run.strip())
        asked = any(word in before.lower() for word in PHONE_WORDS)
        if grouped or asked:
            return "phone"
    if len(digits) >= 9 and not unit_follows:
        return "number"
    return None


def _number_findings(scan: str, allowed_numbers: set[str]) -> list[Finding]:
    found: list[Finding] = []
    scan = DATE_RE.sub(lambda m: "x" * len(m.group()), scan)
    for m in NUMBER_RUN_RE.finditer(scan):
        run = m.group()
        run_digits = "".join(ch for ch in run if ch.isdigit())
        if len(run_digits) < 7:
            continue
        kind = _classify_number(run, run_digits, scan[max(0, m.start() - 10):m.start()],
                                scan[m.end():m.end() + 4])
        if kind is None or any(run_digits.endswith(a) for a in allowed_numbers):
            continue
        found.append(Finding(m.start(), m.end(), kind, PLACEHOLDERS[kind], False))
    return found


def _pattern_findings(folded: str, scans: tuple[str, ...], allowed_numbers: set[str]) -> list[Finding]:
    found: list[Finding] = []
    strict = [(m.start(), m.end()) for m in EMAIL_RE.finditer(folded)]
    for start, end in strict:
        found.append(Finding(start, end, "email", PLACEHOLDERS["email"], False))
    for m in LOOSE_EMAIL_RE.finditer(folded):
        at = m.start() + m.group().index("@")
        if not any(start <= at < end for start, end in strict):
            found.append(Finding(m.start(), m.end(), "email", PLACEHOLDERS["email"], False))
    for m in CONTACT_RE.finditer(folded):
        found.append(Finding(m.start(1), m.end(1), "contact", PLACEHOLDERS["contact"], False))
    for m in PLATE_RE.finditer(folded):
        found.append(Finding(m.start(), m.end(), "plate", PLACEHOLDERS["plate"], False))
    for scan in scans:
        found += _number_findings(scan, allowed_numbers)
    for m in ADDRESS_INTRO_RE.finditer(folded):
        if _SPECIFIC.search(m.group(1)) or re.search(_ADMIN, m.group(1)):
            found.append(Finding(m.start(1), m.end(1), "address", PLACEHOLDERS["address"], False))
    for m in ADDRESS_RE.finditer(folded):
        found.append(Finding(m.start(), m.end(), "address", PLACEHOLDERS["address"], False))
    found += _name_findings(folded)
    return found


def _given_name(text: str, at: int) -> int:
    """How many characters after ``at`` make a given name (0, 1 or 2)."""
    n = 0
    while n < 2 and at + n < len(text) and _is_cjk(text[at + n]) and text[at + n] not in NOT_IN_NAME:
        n += 1
    return n


def _surname_at(text: str, at: int) -> int:
    if text[at:at + 2] in COMPOUND_SURNAMES:
        return 2
    return 1 if at < len(text) and text[at] in SURNAMES else 0


def _name_before(text: str, end: int) -> int | None:
    """Where a name (surname and one or two given characters) ending at ``end`` starts, if one does.

    The longer reading wins (王国强局长 is 王某某, not 王国某), so that no part of a name is left.
    """
    for given in (2, 1):
        for surname in (2, 1):
            at = end - given - surname
            if at < 0 or _surname_at(text, at) != surname:
                continue
            if all(_is_cjk(ch) and ch not in NOT_IN_NAME for ch in text[end - given:end]):
                return at
    return None


_PLACE_AFTER = set("区市县镇乡村街路道省州局委办")  # 我是黄埔区居民: a place, not a name
_INTRO_RE = re.compile("(?:" + "|".join(NAME_INTROS) + r")\s*[:：是为叫]?\s*")
_TITLE_RE = re.compile("(?:" + "|".join(TITLES) + ")")


def _name_findings(folded: str) -> list[Finding]:
    found: list[Finding] = []
    for m in _INTRO_RE.finditer(folded):
        at = m.end()
        s = _surname_at(folded, at)
        g = _given_name(folded, at + s) if s else 0
        if s and g and folded[at + s + g:at + s + g + 1] not in _PLACE_AFTER:
            found.append(Finding(at, at + s + g, "name", _masked_name(folded[at:at + s + g]), False))
    for m in _TITLE_RE.finditer(folded):
        at = _name_before(folded, m.start())
        if at is not None:
            found.append(Finding(at, m.start(), "name", _masked_name(folded[at:m.start()]), False))
    return found


# ---------- applying them ----------

def _allowed_numbers(allowed: tuple[str, ...]) -> set[str]:
    out = set()
    for value in allowed:
        national = national_number(value)
        if national:
            out.add(national)
    return out


def _is_allowed(found: str, allowed_texts: list[str]) -> bool:
    return any(found in a for a in allowed_texts)


def find(text: str, personal: Personal | None = None, allowed: tuple[str, ...] = ()) -> list[Finding]:
    """Every personal detail found, without overlaps: the submission's own first, then the longest.

    ``allowed``: public contact details (the office's own phone, e-mail and address, as the bulletin
    gives them) that a comment may quote; they are not treated as personal details.
    """
    folded = fold(text)
    scans = (folded, spoken_digits(folded))
    allowed_texts = ["".join(fold(a).split()).lower() for a in allowed if a]
    own = _own_findings(folded, scans, personal or Personal())
    patterns = [f for f in _pattern_findings(folded, scans, _allowed_numbers(allowed))
                if not _is_allowed("".join(folded[f.start:f.end].split()).lower(), allowed_texts)]
    chosen: list[Finding] = []
    for f in sorted(own, key=lambda f: (-f.size, f.start)) + sorted(patterns, key=lambda f: (-f.size, f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def apply(text: str, findings: list[Finding]) -> str:
    out, pos = [], 0
    for f in findings:
        out.append(text[pos:f.start])
        out.append(f.replacement)
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str | None, personal: Personal | None = None, allowed: tuple[str, ...] = ()) -> str:
    """The text with every personal detail found replaced by a placeholder (names: 张某)."""
    if not text:
        return text or ""
    return apply(text, find(text, personal, allowed))


@dataclass(frozen=True)
class Problem:
    kind: str
    snippet: str
    own: bool

    @property
    def message(self) -> str:
        whose = "反映人的" if self.own else ""
        return f"仍含{whose}{KIND_WORDS[self.kind]}：“{self.snippet}”"


def problems(text: str, personal: Personal | None = None, allowed: tuple[str, ...] = ()) -> list[Problem]:
    """Why ``text`` may not be published: any detail of the submission, or a phone, e-mail or ID number."""
    personal = personal or Personal()
    out: list[Problem] = []
    for f in find(text, personal, allowed):
        if f.own or f.kind in REFUSED_PATTERNS:
            out.append(Problem(f.kind, text[f.start:f.end].strip(), f.own))
    national = national_number(personal.phone)
    folded = fold(text)
    written = "".join(ch for ch in folded if ch.isascii() and ch.isdigit())
    spoken = "".join(ch for ch in spoken_digits(folded) if ch.isascii() and ch.isdigit())
    if national and len(national) >= 10 and (national in written or national in spoken) and not any(
        p.own and p.kind == "phone" for p in out
    ):
        out.append(Problem("phone", "（数字拆开书写）", True))
    return out
