from django.urls import path

from annotation.views import comparison, curator, dashboard, exports, images, mining, review

app_name = "annotation"

urlpatterns = [
    path("", review.home, name="home"),
    path("queue/", review.queue, name="queue"),
    path("queue/next/", review.next_case, name="next-case"),
    path("chains/<uuid:chain>/", review.chain_page, name="chain"),
    path("chains/<uuid:chain>/history/", review.chain_history, name="chain-history"),
    path("chains/<uuid:chain>/steps/add/", review.step_add, name="step-add"),
    path("chains/<uuid:chain>/reorder/", review.chain_reorder, name="chain-reorder"),
    path("chains/<uuid:chain>/time/", review.chain_time, name="chain-time"),
    path("chains/<uuid:chain>/verify/", review.chain_finish, {"action": "verify"}, name="chain-verify"),
    path("chains/<uuid:chain>/reject/", review.chain_finish, {"action": "reject"}, name="chain-reject"),
    path("chains/<uuid:chain>/skip/", review.chain_finish, {"action": "skip"}, name="chain-skip"),
    path("steps/<uuid:step>/", review.step_row, name="step-row"),
    path("steps/<uuid:step>/verdict/", review.step_verdict, name="step-verdict"),
    path("steps/<uuid:step>/edit/", review.step_edit, name="step-edit"),
    path("steps/<uuid:step>/note/", review.step_note, name="step-note"),
    path("steps/<uuid:step>/delete/", review.step_delete, name="step-delete"),
    path("steps/<uuid:step>/move/", review.step_move, name="step-move"),
    path("curator/", curator.curator, name="curator"),
    path("curator/import/", curator.import_page, name="import"),
    path("verified/", curator.verified, name="verified"),
    path("images/<uuid:image>/render/", images.render_image, name="image-render"),
]

# Each feature module owns its own routes (names inside the "annotation" namespace).
urlpatterns += mining.urlpatterns + exports.urlpatterns + dashboard.urlpatterns + comparison.urlpatterns
