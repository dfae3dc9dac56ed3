"""The words and the folding every search for personal details uses, and what a search finds."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

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


def spaced(chars: str, flags=0) -> re.Pattern:
    """Match ``chars`` with any whitespace between them."""
    return re.compile(r"\s*".join(re.escape(c) for c in chars), flags)


def _surname_of(name: str) -> str:
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    return name[0] if is_cjk(name[0]) else ""


def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def masked_name(name: str) -> str:
    surname = _surname_of(name)
    rest = max(1, min(2, len(name) - len(surname)))
    return (surname + "某" * rest) if surname else "某人"


def name_is_identifying(name: str | None) -> TypeGuard[str]:
    if not name:
        return False
    compact = "".join(name.split())
    if len(compact) < 2:
        return False
    surname = _surname_of(compact)
    rest = compact[len(surname):]
    return not (rest and all(ch in "某×xX*＊" for ch in rest))
