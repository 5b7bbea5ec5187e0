"""What browser tests wait for on the app's pages."""


# The page's scripts are deferred: htmx first, then review.js, which binds the keys and marks the
# review as ready. A page without a review (a verified chain, read only) needs htmx alone.
REVIEW_READY = """() => {
    const review = document.querySelector('.review');
    return window.htmx !== undefined && (review === null || review.dataset.ready === '1');
}"""
