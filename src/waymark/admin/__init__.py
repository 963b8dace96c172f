"""Account administration, built on the domain (a user's maps are exported, transferred or
trashed): the rules (`users.py`), shared by `waymark user …` (`commands.py`) and the admin
page (api/admin_routes.py). Above maps/, while accounts/ (the Actor) stays below it."""
