"""The words of the demo world: names, titles, companies, countries, pages, assets.

Pure data (plus two tiny helpers). Everything here is fixed, so changing any list
changes the generated files: bump ``GENERATOR_VERSION`` in :mod:`.world` when you do.
All text is NFC; e-mail addresses use :func:`ascii_fold` of the names.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

_FOLD_EXTRA = str.maketrans({"đ": "d", "Đ": "D", "ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "ł": "l"})


def ascii_fold(text: str) -> str:
    """``"Nguyễn Thị Đức"`` -> ``"Nguyen Thi Duc"``: strip diacritics, keep ASCII only."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    return "".join(ch for ch in decomposed if ord(ch) < 128)


def email_part(text: str) -> str:
    """A name as an e-mail local part: folded, lower-case, letters and digits only."""
    return "".join(ch for ch in ascii_fold(text).lower() if ch.isalnum())


def _w(text: str) -> tuple[str, ...]:
    """Split a ``|``-separated list (keeps multi-word names like ``van den Berg`` whole)."""
    return tuple(unicodedata.normalize("NFC", part.strip()) for part in text.split("|"))


# --- countries --------------------------------------------------------------------


class Country(NamedTuple):
    """One country of the world."""

    code: str  # ISO-3166 alpha-2
    weight: float  # share of companies
    culture: str  # key of NAMES
    utc_offset_h: float  # a typical office time zone
    phone_prefix: str
    legal_forms: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country("US", 0.27, "en", -6, "+1", _w("Inc.|LLC|Corp.|Inc.|")),
    Country("GB", 0.08, "en", 0, "+44", _w("Ltd|Ltd|plc|")),
    Country("CA", 0.04, "en", -5, "+1", _w("Inc.|Ltd|")),
    Country("AU", 0.035, "en", 10, "+61", _w("Pty Ltd|Pty Ltd|")),
    Country("IE", 0.01, "en", 0, "+353", _w("Ltd|DAC|")),
    Country("DE", 0.07, "de", 1, "+49", _w("GmbH|GmbH|AG|SE")),
    Country("AT", 0.01, "de", 1, "+43", _w("GmbH|AG")),
    Country("CH", 0.01, "de", 1, "+41", _w("AG|GmbH|SA")),
    Country("FR", 0.05, "fr", 1, "+33", _w("SAS|SA|SARL|")),
    Country("BE", 0.01, "fr", 1, "+32", _w("SA|SRL|BV")),
    Country("NL", 0.03, "nl", 1, "+31", _w("B.V.|B.V.|N.V.|")),
    Country("VN", 0.09, "vi", 7, "+84", _w("JSC|Co., Ltd|")),
    Country("IN", 0.10, "in", 5.5, "+91", _w("Pvt Ltd|Pvt. Ltd.|Ltd|")),
    Country("SG", 0.03, "sg", 8, "+65", _w("Pte Ltd|Pte. Ltd.|")),
    Country("BR", 0.05, "pt", -3, "+55", _w("Ltda|S.A.|")),
    Country("PT", 0.01, "pt", 0, "+351", _w("Lda|S.A.")),
    Country("ES", 0.03, "es", 1, "+34", _w("S.L.|S.A.|")),
    Country("MX", 0.02, "es", -6, "+52", _w("S.A. de C.V.|S. de R.L.|")),
    Country("JP", 0.02, "ja", 9, "+81", _w("K.K.|Co., Ltd.|")),
)

# --- people -------------------------------------------------------------------------


class Names(NamedTuple):
    """Name parts of one culture. ``middle_*`` empty unless the culture uses them."""

    family: tuple[str, ...]
    given_m: tuple[str, ...]
    given_f: tuple[str, ...]
    middle_m: tuple[str, ...] = ()
    middle_f: tuple[str, ...] = ()
    family_weights: tuple[float, ...] = ()  # empty: uniform
    family_first: bool = False


_EN_M = _w("James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Christopher|Daniel|Matthew|Anthony|Mark|Liam|Noah|Lucas|Ryan|Jack|Harry|Oliver|Ethan|Sean|Kevin")
_EN_F = _w("Mary|Patricia|Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|Nancy|Lisa|Margaret|Sandra|Emily|Olivia|Emma|Ava|Sophia|Chloe|Grace|Megan|Amelia|Isla|Hannah")
NAMES: dict[str, Names] = {
    "en": Names(
        _w("Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Wilson|Anderson|Taylor|Thomas|Moore|Martin|Jackson|Thompson|White|Harris|Clark|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|Green|Baker|Adams|Nelson|Hill|Campbell|Mitchell|Roberts|Carter|Phillips|Evans|Turner|Parker|Collins|Edwards|Stewart|Morris|Murphy|Cook|Rogers|O'Brien|Bennett|Hughes|Price"),
        _EN_M,
        _EN_F,
    ),
    "de": Names(
        _w("Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schulz|Hoffmann|Schäfer|Koch|Bauer|Richter|Klein|Wolf|Schröder|Neumann|Schwarz|Zimmermann|Braun|Krüger|Hofmann|Hartmann|Lange|Schmitt|Werner|Krause|Meier|Lehmann|Weiß|Groß"),
        _w("Jürgen|Lukas|Leon|Maximilian|Felix|Jonas|Paul|Stefan|Andreas|Michael|Thomas|Jörg|Björn|Tobias|Florian|Sebastian|Günter|Matthias"),
        _w("Katrin|Anna|Lena|Sophie|Marie|Julia|Laura|Sabine|Ursula|Claudia|Petra|Monika|Heike|Jana|Annika|Käthe"),
    ),
    "fr": Names(
        _w("Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Leroy|Moreau|Simon|Laurent|Lefèvre|Michel|Garcia|David|Bertrand|Roux|Vincent|Fournier|Morel|Girard|André|Lefebvre|Mercier|Dupont|Lambert|Bonnet|François|Chevalier|Gauthier|Bénard"),
        _w("François|Jean|Pierre|Louis|Hugo|Gabriel|Jules|Nicolas|Julien|Sébastien|Mathieu|Thomas|Antoine|Stéphane|Loïc|Jérôme|Benoît|Rémi"),
        _w("Hélène|Marie|Camille|Léa|Chloé|Manon|Inès|Élodie|Céline|Aurélie|Amélie|Émilie|Anaïs|Noémie|Gaëlle|Margaux|Clémence|Zoé"),
    ),
    "nl": Names(
        _w("de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Janssen|Visser|Smit|Meijer|de Boer|Mulder|de Groot|Bos|Vos|Peters|Hendriks|van Leeuwen|Dekker|Brouwer|de Wit|Dijkstra|Smits|de Graaf|van der Meer"),
        _w("Daan|Sem|Lucas|Levi|Finn|Bram|Jesse|Thijs|Ruben|Pieter|Joost|Willem|Koen|Sjoerd"),
        _w("Sanne|Emma|Julia|Lotte|Fleur|Anouk|Femke|Maaike|Eva|Sophie|Noor|Marieke|Ilse|Lieke"),
    ),
    "vi": Names(
        _w("Nguyễn|Trần|Lê|Phạm|Hoàng|Huỳnh|Phan|Vũ|Võ|Đặng|Bùi|Đỗ|Hồ|Ngô|Dương|Lý"),
        _w("Đức|Hùng|Dũng|Tuấn|Long|Nam|Khánh|Việt|Quân|Sơn|Hải|Bình|Cường|Thắng|Hiếu|Phúc|Huy|Trung|Kiên|Tùng|Minh|Đạt"),
        _w("Hương|Linh|Trang|Hà|Lan|Mai|Phương|Thảo|Thủy|Yến|Nhung|Hạnh|Tâm|Vy|Ngân|Giang|Hoa|Anh|Ánh|Uyên|Huyền|Nga"),
        _w("Văn|Văn|Văn|Đức|Minh|Quang|Hữu|Thành|Công|Tuấn|Xuân|Đình"),
        _w("Thị|Thị|Thị|Ngọc|Thu|Thanh|Quỳnh|Phương|Bảo|Diệu|Minh|Kim"),
        (38, 11, 9.5, 7, 5, 5, 4.5, 4, 4, 2, 2, 1.5, 1.5, 1.5, 1, 0.5),
        True,
    ),
    "in": Names(
        _w("Sharma|Verma|Gupta|Singh|Kumar|Patel|Shah|Mehta|Reddy|Rao|Nair|Iyer|Menon|Joshi|Kulkarni|Desai|Chatterjee|Banerjee|Mukherjee|Das|Bose|Agarwal|Jain|Malhotra|Kapoor|Pillai|Krishnan|Srinivasan|Chopra|Bhat"),
        _w("Aarav|Vivaan|Aditya|Arjun|Rohan|Rahul|Vikram|Sanjay|Amit|Anil|Deepak|Rajesh|Suresh|Karthik|Siddharth|Nikhil|Harish|Varun"),
        _w("Priya|Ananya|Diya|Isha|Kavya|Neha|Pooja|Sneha|Lakshmi|Meera|Divya|Shreya|Aishwarya|Anjali|Swati|Riya"),
    ),
    "sg": Names(
        _w("Tan|Lim|Lee|Ng|Ong|Wong|Goh|Chua|Chan|Koh|Teo|Ang|Yeo|Tay|Ho|Low|Sim|Chong|Rahman|Pillai"),
        _w("Wei Ming|Jun Jie|Zhi Hao|Kai Wen|Wen Jie|Marcus|Darren|Ahmad|Muhammad|Ravi|Jonathan|Benjamin"),
        _w("Jia Hui|Xin Yi|Hui Min|Li Ting|Shu Fen|Rachel|Jasmine|Priscilla|Nurul|Siti|Farah|Michelle"),
    ),
    "pt": Names(
        _w("Silva|Santos|Oliveira|Souza|Rodrigues|Ferreira|Alves|Pereira|Lima|Gomes|Costa|Ribeiro|Martins|Carvalho|Almeida|Lopes|Soares|Fernandes|Vieira|Barbosa|Rocha|Dias|Nascimento|Andrade|Moreira|Araújo|Gonçalves|Simões"),
        _w("João|José|Antônio|Carlos|Paulo|Pedro|Lucas|Luiz|Marcos|Gabriel|Rafael|Thiago|Rodrigo|Gonçalo|Vinícius|Sérgio|Fábio|Caio"),
        _w("Maria|Ana|Francisca|Juliana|Fernanda|Beatriz|Larissa|Camila|Letícia|Débora|Tatiana|Conceição|Márcia|Lúcia|Inês|Luíza"),
    ),
    "es": Names(
        _w("García|Rodríguez|González|Fernández|López|Martínez|Sánchez|Pérez|Gómez|Martín|Jiménez|Ruiz|Hernández|Díaz|Moreno|Muñoz|Álvarez|Romero|Alonso|Gutiérrez|Navarro|Torres|Domínguez|Ramírez|Flores|Peña"),
        _w("José|Javier|Alejandro|Pablo|Diego|Sergio|Andrés|Jesús|Raúl|Ángel|Fernando|Santiago|Mateo|Iñigo|Joaquín"),
        _w("María|Carmen|Lucía|Sofía|Martina|Elena|Laura|Mónica|Verónica|Guadalupe|Alejandra|Ximena|Begoña|Núria|Rocío"),
    ),
    "ja": Names(
        _w("Sato|Suzuki|Takahashi|Tanaka|Watanabe|Ito|Yamamoto|Nakamura|Kobayashi|Kato|Yoshida|Yamada|Sasaki|Yamaguchi|Matsumoto|Inoue|Kimura|Hayashi|Shimizu|Saito"),
        _w("Haruto|Yuto|Sota|Hiroshi|Takeshi|Kenji|Daiki|Ren|Kazuki|Shota"),
        _w("Yuki|Sakura|Yui|Aoi|Hina|Mei|Yuna|Akiko|Naomi|Keiko|Emi|Riko"),
    ),
}
CULTURES: tuple[str, ...] = tuple(NAMES)

SENIORITIES: tuple[str, ...] = ("c_level", "vp", "director", "manager", "individual", "student", "other")
SENIORITY_WEIGHTS: tuple[float, ...] = (0.07, 0.06, 0.11, 0.22, 0.35, 0.06, 0.13)

JOB_TITLES: dict[str, tuple[str, ...]] = {
    "c_level": _w("CEO|CEO|CTO|CFO|COO|CMO|CIO|Chief Revenue Officer|Founder & CEO|Co-founder|Managing Director|Owner"),
    "vp": _w("VP of Sales|VP Marketing|VP Engineering|Vice President of Operations|SVP Sales|VP Business Development|VP of Revenue Operations|VP Customer Success"),
    "director": _w("Director of Marketing|Head of Sales|IT Director|Director of Engineering|Head of Growth|Sales Director|Head of Demand Generation|Director of Operations|Head of Data"),
    "manager": _w("Marketing Manager|Sales Manager|IT Manager|Product Manager|Engineering Manager|Operations Manager|Marketing Operations Manager|Account Manager|Project Manager|CRM Manager"),
    "individual": _w("Software Engineer|Data Analyst|Marketing Specialist|Sales Representative|Account Executive|Accountant|Designer|Business Analyst|SDR|Developer|Data Scientist|Marketing Coordinator|Customer Success Associate"),
    "student": _w("Student|MBA Candidate|Intern|Graduate Student|PhD Student|Marketing Student"),
    "other": _w("Consultant|Freelancer|Retired|Teacher|Looking for opportunities|Job seeker|Assistant|Advisor|Researcher"),
}
# A few Vietnamese leads type their title in Vietnamese.
JOB_TITLES_VI: dict[str, tuple[str, ...]] = {
    "c_level": _w("Giám đốc|Tổng giám đốc"),
    "vp": _w("Phó giám đốc|Phó tổng giám đốc"),
    "director": _w("Giám đốc Kinh doanh|Giám đốc Marketing"),
    "manager": _w("Trưởng phòng Kinh doanh|Trưởng phòng Marketing|Quản lý dự án"),
    "individual": _w("Nhân viên kinh doanh|Kỹ sư phần mềm|Chuyên viên Marketing"),
    "student": _w("Sinh viên"),
    "other": _w("Tư vấn viên|Cộng tác viên"),
}
JOB_SEEKER_TITLES: tuple[str, ...] = _w("Looking for opportunities|Job seeker|Open to work")

SOURCES: tuple[str, ...] = ("organic_search", "paid_search", "social", "referral", "email", "event", "direct", "partner")
SOURCE_WEIGHTS: tuple[float, ...] = (0.28, 0.16, 0.12, 0.07, 0.08, 0.10, 0.13, 0.06)

# --- companies -------------------------------------------------------------------------

INDUSTRIES: tuple[str, ...] = (
    "software", "saas", "fintech", "it_services", "ecommerce", "financial_services",
    "healthcare", "manufacturing", "retail", "education", "logistics", "media",
    "telecommunications", "consulting", "real_estate", "energy", "non_profit", "government",
)
INDUSTRY_WEIGHTS: tuple[float, ...] = (
    0.13, 0.09, 0.05, 0.09, 0.06, 0.06, 0.06, 0.08, 0.05, 0.05, 0.05, 0.04,
    0.03, 0.06, 0.03, 0.02, 0.02, 0.03,
)
INDUSTRY_SUFFIXES: dict[str, tuple[str, ...]] = {
    "software": _w("Software|Systems|Labs|Technologies"),
    "saas": _w("Cloud|HQ|Apps|Platform"),
    "fintech": _w("Pay|Ledger|Capital|Fintech"),
    "it_services": _w("IT Solutions|Digital|Tech Services|Consulting"),
    "ecommerce": _w("Shop|Commerce|Market|Store"),
    "financial_services": _w("Financial|Insurance|Bank|Wealth"),
    "healthcare": _w("Health|Medical|Care|Clinics"),
    "manufacturing": _w("Manufacturing|Industries|Engineering|Components"),
    "retail": _w("Retail|Stores|Brands|Goods"),
    "education": _w("Academy|Learning|Institute|Education"),
    "logistics": _w("Logistics|Freight|Transport|Shipping"),
    "media": _w("Media|Studios|Publishing|Creative"),
    "telecommunications": _w("Telecom|Networks|Mobile|Connect"),
    "consulting": _w("Consulting|Advisors|Group|Partners"),
    "real_estate": _w("Properties|Realty|Estates|Homes"),
    "energy": _w("Energy|Power|Renewables|Solar"),
    "non_profit": _w("Foundation|Trust|Alliance|Society"),
    "government": _w("Agency|Authority|Council|Public Services"),
}
COMPANY_PREFIXES: tuple[str, ...] = _w(
    "Acme|Apex|Blue|Bright|Cloud|Core|Crest|Delta|Echo|Ever|Falcon|Fusion|Global|Green|Harbor|"
    "Helix|Horizon|Iron|Juniper|Keystone|Lumen|Maple|Meridian|Nimbus|North|Nova|Oak|Omni|Orbit|"
    "Peak|Pine|Pixel|Prime|Quantum|Quest|Radiant|Red|Sage|Silver|Sky|Solar|Spark|Stellar|Summit|"
    "Swift|Terra|Titan|True|Union|Unity|Vector|Venture|Vertex|Vista|Wave|West|Zen|Zenith|Atlas|Beacon"
)
COMPANY_ROOTS: tuple[str, ...] = ("",) * 6 + _w("tech|soft|data|logic|works|link|ware|wise|stack|flow|line|point|bit|gate|path")
VN_COMPANY_FORMS: tuple[str, ...] = _w("Công ty TNHH|Công ty Cổ phần|Công ty TNHH|Tập đoàn")
VN_COMPANY_WORDS: tuple[str, ...] = _w("Công nghệ|Phần mềm|Thương mại|Dịch vụ|Giải pháp Số|Đầu tư")
VN_BRANDS: tuple[str, ...] = _w(
    "Minh Phát|An Phúc|Sao Việt|Thành Công|Hưng Thịnh|Đại Dương|Phú Thành|Việt Tiến|Hoàng Long|"
    "Bình Minh|Ánh Dương|Trường Sơn|Hải Đăng|Nam Việt|Tân Phú|Đông Á|Thiên Long|Kim Cương"
)
COMPANY_EMOJI: tuple[str, ...] = ("🚀", "✨", "🌱", "💡", "⚡")
# bucket edges (employees) and shares of companies
SIZE_BUCKETS: tuple[tuple[int, int, float], ...] = (
    (1, 10, 0.17), (11, 49, 0.24), (50, 200, 0.25), (201, 500, 0.14),
    (501, 1000, 0.08), (1001, 5000, 0.08), (5001, 100000, 0.04),
)
PERSONAL_DOMAINS: tuple[str, ...] = ("mail.example", "inbox.example", "webmail.example", "post.example")
STUDENT_DOMAINS: tuple[str, ...] = ("student.example.edu", "campus.example.edu", "uni.example.edu")
UNIVERSITIES: dict[str, tuple[str, ...]] = {
    "US": _w("Stanford University|State University|Community College|NYU Stern"),
    "GB": _w("University of Manchester|University of Edinburgh|King's College London"),
    "CA": _w("University of Toronto|McGill University"),
    "AU": _w("UNSW Sydney|University of Melbourne"),
    "DE": _w("TU München|Universität Hamburg|Hochschule München"),
    "FR": _w("Sorbonne Université|HEC Paris|École Polytechnique"),
    "NL": _w("TU Delft|Universiteit van Amsterdam"),
    "VN": _w("Đại học Bách khoa Hà Nội|Đại học Quốc gia TP.HCM|Đại học Kinh tế Quốc dân|Đại học FPT"),
    "IN": _w("IIT Bombay|University of Delhi|IIM Bangalore"),
    "SG": _w("National University of Singapore|Nanyang Technological University"),
    "BR": _w("Universidade de São Paulo|Unicamp"),
    "ES": _w("Universidad de Barcelona|Universidad Complutense de Madrid"),
    "MX": _w("UNAM|Tecnológico de Monterrey"),
    "JP": _w("University of Tokyo|Keio University"),
}
OTHER_UNIVERSITIES: tuple[str, ...] = _w("State University|Business School|Technical University")

# --- the website, e-mails, content --------------------------------------------------------

SITE = "https://example.com"
BLOG_POSTS: tuple[str, ...] = (
    "what-is-lead-scoring", "mql-vs-sql", "b2b-funnel-benchmarks-2026", "intent-data-explained",
    "email-deliverability-checklist", "account-based-marketing-101", "sales-marketing-alignment",
    "predictive-scoring-myths", "gdpr-consent-for-marketers", "crm-hygiene", "webinar-playbook",
    "pipeline-velocity", "ai-in-revops", "nurture-sequences-that-work", "lead-routing-rules",
)
CASE_STUDIES: tuple[str, ...] = (
    "acme-logistics", "nova-fintech", "bluepeak-saas", "minh-phat-retail", "meridian-health",
    "vertex-manufacturing", "orbit-telecom", "sao-viet-software",
)
PRODUCT_PAGES: tuple[str, ...] = ("lead-scoring", "integrations", "analytics", "automation", "api", "security")
DOCS_PAGES: tuple[str, ...] = (
    "getting-started", "scoring-rules", "api-reference", "webhooks", "crm-sync", "data-import",
    "sso", "model-training",
)
JOBS: tuple[str, ...] = (
    "senior-backend-engineer", "account-executive", "product-designer", "data-scientist",
    "customer-success-manager", "sdr-emea", "frontend-engineer", "marketing-intern",
)
# page_view url groups, in the order behaviour.PAGE_* uses
PAGE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("/", "/about"),
    ("/pricing",),
    ("/pricing/enterprise",),
    tuple(f"/product/{p}" for p in PRODUCT_PAGES),
    tuple(f"/blog/{p}" for p in BLOG_POSTS),
    tuple(f"/case-studies/{p}" for p in CASE_STUDIES),
    ("/careers",) * 3 + tuple(f"/careers/jobs/{p}" for p in JOBS),
    tuple(f"/docs/{p}" for p in DOCS_PAGES),
    ("/contact",),
)
# email_click link groups: demo, webinar, blog, case study, pricing
LINK_GROUPS: tuple[tuple[str, ...], ...] = (
    (f"{SITE}/demo",),
    (f"{SITE}/webinar",),
    tuple(f"{SITE}/blog/{p}" for p in BLOG_POSTS),
    tuple(f"{SITE}/case-studies/{p}" for p in CASE_STUDIES),
    (f"{SITE}/pricing",),
)
# download asset groups: case study, whitepaper, ebook, datasheet
ASSET_GROUPS: tuple[tuple[str, ...], ...] = (
    tuple(f"case-study-{p}" for p in CASE_STUDIES),
    ("whitepaper-state-of-b2b-marketing-2026", "whitepaper-predictive-scoring", "whitepaper-data-privacy"),
    ("ebook-lead-scoring-guide", "ebook-email-nurture-playbook", "ebook-abm-handbook", "ebook-revops-101"),
    ("datasheet-platform", "datasheet-security", "datasheet-integrations"),
)
FORMS: tuple[str, ...] = ("contact", "newsletter", "ebook", "demo")
TICKET_CATEGORIES: tuple[str, ...] = ("sales", "technical", "billing")
WEBINAR_TOPICS: tuple[str, ...] = (
    "lead-scoring-101", "predictive-models-in-practice", "abm-for-mid-market", "revops-roundtable",
    "email-nurture-masterclass", "product-tour", "crm-integration-deep-dive", "customer-panel",
    "pipeline-forecasting", "data-privacy-for-marketers", "scoring-for-plg", "quarterly-product-update",
)
