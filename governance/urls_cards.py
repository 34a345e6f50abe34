from django.urls import path

from governance import views_cards

app_name = "cards"

version = "p/<slug:slug>/models/<str:name>/v/<int:number>/"

urlpatterns = [
    path(version + "card/", views_cards.card_page, name="card"),
    path(version + "card/edit/", views_cards.card_edit, name="edit"),
    path(version + "card.md", views_cards.card_markdown, name="markdown"),
    path(version + "card.html", views_cards.card_html, name="html"),
]
