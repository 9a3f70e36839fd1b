from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """The API's one pagination (also DRF's default): ``?page=N`` and ``?page_size=M`` (up to 500);
    the body is ``{count, next, previous, results}``."""

    page_size_query_param = "page_size"
    max_page_size = 500


def paginate(view, queryset, serializer_class, **serializer_kwargs):
    """One page of ``queryset`` serialized by ``serializer_class``; the serializer's context gets the request."""
    paginator = (getattr(view, "pagination_class", None) or Pagination)()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    context = {"request": view.request, **serializer_kwargs.pop("context", {})}
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context, **serializer_kwargs).data)
