"""What the synthetic text images say: signs, labels, receipts, notices and tickets.

All written for this project (no benchmark or dataset text). ASCII only: Pillow's bundled font
covers a limited character set. The OCR eval's phrases live in :mod:`aetherial_vision.evals`, and
are kept apart from these so the benchmark never leaks into training data.
"""

from __future__ import annotations

SIGNS = (
    "Mind the step", "Staff only beyond this point", "Car park full", "Wet paint do not touch",
    "Back in 10 minutes", "Bike repairs upstairs", "Please ring the bell", "Fresh coffee all day",
    "No parking on Sundays", "Library opens at 9:30", "Fire exit keep clear", "Quiet zone",
    "Cash only today", "Lift out of order", "Deliveries at rear", "Keep dogs on a lead",
    "Closed for lunch", "Visitors sign in here", "Toilets on the left", "Hot food served until 8pm",
    "Platform 3 for Norwich", "Slow down school ahead", "Free wifi inside", "Shoes off please",
    "Exit via the garden", "Ticket office closed", "Open 7 days a week", "Beware of the geese",
    "Push door firmly", "Tables for customers only", "Recycling bins round the back", "Queue starts here",
)

#: (product, size, best before, price): one product label each.
LABELS = (
    ("Oat milk", "1 litre", "14 Mar", "1.45"), ("Basmati rice", "500 g", "02 Nov", "2.10"),
    ("Rye bread", "800 g", "19 Jun", "1.95"), ("Greek yoghurt", "450 g", "08 Apr", "2.35"),
    ("Apple juice", "1.5 litre", "27 Sep", "1.80"), ("Dark chocolate", "100 g", "11 Dec", "1.25"),
    ("Peanut butter", "340 g", "30 Jan", "2.60"), ("Green lentils", "1 kg", "15 Aug", "1.70"),
    ("Orange marmalade", "454 g", "21 May", "2.25"), ("Spring water", "2 litre", "04 Jul", "0.65"),
)

#: (shop, [(item, price), ...]): the total is computed, never written by hand.
RECEIPTS = (
    ("CORNER CAFE", (("Tea", "2.10"), ("Scone", "2.75"))),
    ("HILL STREET BAKERY", (("Sourdough", "3.80"), ("Croissant", "1.60"), ("Flapjack", "1.90"))),
    ("GREEN GROCER", (("Carrots", "0.85"), ("Leeks", "1.20"), ("Apples", "2.40"))),
    ("THE BOOK NOOK", (("Notebook", "4.50"), ("Pencils", "1.99"))),
    ("CITY HARDWARE", (("Hinges", "3.25"), ("Screws", "2.15"), ("Glue", "4.05"))),
    ("PARK KIOSK", (("Ice cream", "2.50"), ("Water", "1.10"))),
    ("RIVER PHARMACY", (("Plasters", "2.99"), ("Sun cream", "6.49"))),
    ("NOODLE BAR", (("Ramen", "9.50"), ("Gyoza", "4.75"), ("Green tea", "2.20"))),
)

#: (event, day and time, place): one notice each.
NOTICES = (
    ("Yoga class", "Tuesdays 18:00", "Room 4"), ("Choir practice", "Thursdays 19:30", "Main hall"),
    ("Book swap", "Saturday 10:00", "Library foyer"), ("Chess club", "Mondays 17:15", "Room 12"),
    ("First aid course", "Friday 09:00", "Training room"), ("Repair cafe", "Sunday 14:00", "Church hall"),
    ("Coding club", "Wednesdays 16:30", "Lab 2"), ("Pottery taster", "Saturday 11:30", "Studio B"),
)

#: (from, to, seat, date): one train ticket each.
TICKETS = (
    ("Leeds", "York", "42C", "03 May"), ("Bristol", "Cardiff", "17A", "12 Jun"),
    ("Glasgow", "Perth", "08D", "21 Jul"), ("Derby", "Sheffield", "33B", "09 Aug"),
    ("Exeter", "Plymouth", "25F", "14 Sep"), ("Oxford", "Reading", "11E", "30 Oct"),
)


def receipt_total(items: tuple[tuple[str, str], ...]) -> str:
    """The receipt's total to the penny (computed in pence, so no float rounding)."""
    pence = sum(int(price.replace(".", "")) for _, price in items)
    return f"{pence // 100}.{pence % 100:02d}"
