"""The guard's detectors of identifying patterns in free text, language by language."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_shared.guard import patterns_in
from relay_shared.guard.rules import GuardRulesError, default_rules, load_rules
from relay_shared.guard.text import fold
from relay_shared.settings import load_settings

RULES = default_rules()

DATES = {
    "en": ["seen on 5 January 2024", "January 5, 2024", "Jan 5 2024", "the 5th of March 2019",
           "born December 1961", "Sept 30, 1999"],
    "de": ["am 5. Januar 2024", "5. März 2024", "geboren 12. Dezember 1961", "3. Jänner 2020",
           "Kontrolle 05.01.2024"],
    "fr": ["le 1er janvier 2024", "5 février 2024", "né le 12 décembre 1961", "15 août 2023",
           "examen du 05/01/2024"],
    "es": ["5 de enero de 2024", "el 12 de diciembre de 1961", "3 de marzo 2020",
           "nacido en septiembre de 1999"],
    "nl": ["5 januari 2024", "geboren 12 maart 1961", "1 mei 2020", "oktober 2023"],
    "it": ["5 gennaio 2024", "nato il 12 dicembre 1961", "3 marzo 2020", "20 agosto 2021"],
    "zh": ["2024年1月5日复查", "出生于1961年12月12日", "二〇二四年一月五日", "2024 年 1 月"],
    "ja": ["2024年1月5日に検査", "令和6年1月5日", "平成元年", "昭和36年12月12日生"],
    "ko": ["2024년 1월 5일 검사", "1961년 12월 12일생", "2020년 3월"],
    "numeric": ["2024-01-05", "on 20240105 at noon", "01/05/2024", "5.1.24", "1999/12/31"],
    # A month's abbreviation between numbers, as devices and RIS write dates.
    "abbreviated": ["DOB 03-Mar-1975", "3-Mar-75", "03-MAR-1975", "12/Dec/2019",
                    "5.Okt.2020", "Mar-03-1975", "1975-Mar-03"],
}

NOT_IDENTIFYING = [
    "Head routine", "AXIAL 5MM", "Series 5 of 12", "120 kV, 250 mAs", "slice 2.5 mm",
    "1.2.840.10008.5.1.4.1.1.2", "Protocol version 2024", "T2 FLAIR 3D", "512 x 512",
    "CT Thorax mit KM", "Tomografía de tórax", "胸部CT平扫", "두부 CT", "頭部単純CT",
    "May be repeated", "Dose 1200 mGy.cm", "Window 400/40", "Mars protocol 3",
    "Series 2024-A", "Kernel B30f", "left 1/2 of the field", "2.5 May 120",
    # Not domestic phone numbers, nor dates: series, measurements, counts.
    "Series 010 120 250", "kV 080 100 120 140", "Images 0001 0002 0003", "Dose 0120 1500",
    "Slices 0120 0240", "0.5 1.0 2.5 5.0", "ROI 012 345 678", "T1-Mar-T2", "3-Mar protocol",
    "Set 3-set-2", "Matrix 0512 0512", "window 0400 0040", "Slices 001 120",
    "Images 001 002 003",
]


@pytest.mark.parametrize(("language", "text"),
                         [(lang, text) for lang, texts in DATES.items() for text in texts])
def test_a_date_is_found_in_each_language(language: str, text: str) -> None:
    found = patterns_in(text, RULES)
    assert any(kind.startswith("dates.") for kind in found), (language, found)


@pytest.mark.parametrize("text", NOT_IDENTIFYING)
def test_clinical_text_without_identifiers_is_left_alone(text: str) -> None:
    assert patterns_in(text, RULES) == []


@pytest.mark.parametrize("text", [
    "call +49 30 12345678", "Tel.: 030/1234567", "(555) 123-4567", "555-0199",
    "+1 (617) 555-0123", "06 12 34 56 78", "0044 20 7946 0958", "phone 0301234567",
    "+82-2-312-3456", "電話 +81 3-1234-5678",
    # Domestic numbers, the area code and the number apart by spaces.
    "call 0171 2345678", "ph 020 7946 0958", "030 12345678", "Praxis 089 1234 5678",
    "0201 234 5678",
])
def test_a_phone_number_is_found(text: str) -> None:
    assert any(kind.startswith("phones.") for kind in patterns_in(text, RULES))


@pytest.mark.parametrize("text", [
    "SSN 123-45-6789", "NHS 943 476 5919", "주민등록번호 800101-1234567",
    "身份证 11010519491231002X", "CF RSSMRA85T10A562S", "DNI 12345678Z",
    "NIR 1 85 05 78 006 084 36", "BSN 1234.56.782", "MRN 1234567890",
])
def test_a_national_id_like_number_is_found(text: str) -> None:
    assert patterns_in(text, RULES), text


def test_a_site_adds_its_own_id_pattern() -> None:
    text = "Fall KH-2024-000123"
    assert patterns_in(text, RULES) == []
    rules = load_rules({"case number": r"kh-\d{4}-\d{6}"})
    assert patterns_in(text, rules) == ["national_ids.site_case_number"]


def test_a_site_pattern_that_does_not_compile_is_refused_by_name() -> None:
    with pytest.raises(GuardRulesError, match="site_broken"):
        load_rules({"broken": "(unclosed"})


# Property tests: every date of a century, in every written form, is found.
WRITTEN = {
    "en": ("{d} {month} {y}", ["january", "february", "march", "april", "may", "june", "july",
                               "august", "september", "october", "november", "december"]),
    "de": ("{d}. {month} {y}", ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli",
                                "August", "September", "Oktober", "November", "Dezember"]),
    "fr": ("{d} {month} {y}", ["janvier", "février", "mars", "avril", "mai", "juin", "juillet",
                               "août", "septembre", "octobre", "novembre", "décembre"]),
    "es": ("{d} de {month} de {y}", ["enero", "febrero", "marzo", "abril", "mayo", "junio",
                                     "julio", "agosto", "septiembre", "octubre", "noviembre",
                                     "diciembre"]),
    "nl": ("{d} {month} {y}", ["januari", "februari", "maart", "april", "mei", "juni", "juli",
                               "augustus", "september", "oktober", "november", "december"]),
    "it": ("{d} {month} {y}", ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno",
                               "luglio", "agosto", "settembre", "ottobre", "novembre",
                               "dicembre"]),
}
NUMERIC = ["{y}-{m:02d}-{d:02d}", "{y}{m:02d}{d:02d}", "{d:02d}.{m:02d}.{y}", "{m}/{d}/{y}",
           "{y}年{m}月{d}日", "{y}년 {m}월 {d}일"]
days = st.dates(datetime.date(1900, 1, 1), datetime.date(2099, 12, 31))
case = st.sampled_from([str.lower, str.upper, str.title, lambda s: s])


@given(day=days, language=st.sampled_from(sorted(WRITTEN)), change=case,
       before=st.sampled_from(["", "seen ", "Kontrolle am ", "患者 "]),
       after=st.sampled_from(["", ".", " for review", "。"]))
@settings(max_examples=300, deadline=None)
def test_any_written_date_is_found(day: datetime.date, language: str, change, before: str,
                                   after: str) -> None:
    form, months = WRITTEN[language]
    text = form.format(d=day.day, month=change(months[day.month - 1]), y=day.year)
    assert any(k.startswith("dates.") for k in patterns_in(before + text + after, RULES)), text


@given(day=days, form=st.sampled_from(NUMERIC))
@settings(max_examples=300, deadline=None)
def test_any_numeric_date_is_found(day: datetime.date, form: str) -> None:
    text = "exam " + form.format(d=day.day, m=day.month, y=day.year) + " ok"
    assert any(k.startswith("dates.") for k in patterns_in(text, RULES)), text


@given(user=st.from_regex(r"[a-z][a-z0-9._+-]{0,20}", fullmatch=True),
       domain=st.from_regex(r"[a-z][a-z0-9-]{0,15}\.(com|org|de|fr|co\.uk|cn)", fullmatch=True),
       change=case)
@settings(max_examples=200, deadline=None)
def test_any_email_address_is_found(user: str, domain: str, change) -> None:
    assert "emails.address" in patterns_in(f"contact {change(user)}@{domain} please", RULES)


@given(country=st.integers(1, 999), groups=st.lists(st.integers(10, 9999), min_size=2,
                                                    max_size=4),
       separator=st.sampled_from([" ", "-", ".", "/"]))
@settings(max_examples=200, deadline=None)
def test_any_international_phone_number_is_found(country: int, groups: list[int],
                                                 separator: str) -> None:
    number = f"+{country} " + separator.join(str(g) for g in groups)
    assert any(k.startswith("phones.") for k in patterns_in(f"ring {number}", RULES)), number


@given(words=st.lists(st.sampled_from(
    ["head", "chest", "axial", "contrast", "routine", "thorax", "abdomen", "kontrast", "mit",
     "ohne", "coupe", "avec", "sin", "con", "met", "zonder", "senza", "helical", "FLAIR",
     "T1", "T2", "3D", "5mm", "kV", "mAs", "胸部", "头部", "平扫", "造影", "흉부", "조영",
     "May", "March", "Mai", "mars", "Mar", "de", "of", "2.5", "120", "512"]),
    max_size=12))
@settings(max_examples=300, deadline=None)
def test_clinical_words_in_any_order_hold_no_pattern(words: list[str]) -> None:
    assert patterns_in(" ".join(words), RULES) == []


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_folding_is_idempotent_and_ignores_case(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert fold(text.upper()) == fold(text.lower()) or not text.isascii()


def test_a_site_pattern_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_GUARD_ID_PATTERNS", '{"case number": "kh-\\\\d{4}-\\\\d{6}"}')
    rules = load_rules(load_settings().guard_id_patterns)
    assert patterns_in("Fall KH-2024-000123", rules) == ["national_ids.site_case_number"]


@pytest.mark.parametrize("name", ["rules.yaml", "attributes.yaml"])
def test_the_packaged_rules_read_the_same_by_libyaml_as_by_pyyaml_s_own_parser(name: str) -> None:
    """The rules are loaded by libyaml where it is there; a file it read otherwise than
    PyYAML's own SafeLoader would change what the guard and the profile look for."""
    from importlib import resources

    import yaml

    text = (resources.files("relay_shared.guard") / "data" / name).read_text(encoding="utf-8")
    assert yaml.__with_libyaml__
    assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader)
