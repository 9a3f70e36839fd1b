from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """``?page=N`` and ``?page_size=M`` (up to 500); the body is ``{count, next, previous, results}``."""

    page_size_query_param = "page_size"
    max_page_size = 500


def paginate(view, queryset, serializer_class, **serializer_kwargs):
    paginator = getattr(view, "pagination_class", None) or Pagination
    paginator = paginator()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, **serializer_kwargs).data)
