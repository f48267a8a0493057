"""Reports page and its CSV exports (members; agents see their own numbers, admins every agent)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.access import member_required
from tickets import charts, reports, reports_csv
from tickets.forms_admin import ReportPeriodForm

PRESETS = (7, 30, 90)


def _period(request: HttpRequest) -> tuple[ReportPeriodForm, reports.Period]:
    form = ReportPeriodForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    period = reports.period_for(
        request.tenant, data.get("start"), data.get("end"), days=data.get("days") or 30
    )
    return form, period


@member_required
def overview(request):
    form, period = _period(request)
    report = reports.build(request.membership, period)
    context = {
        "form": form,
        "report": report,
        "chart": charts.daily_bars(report.daily),
        "query": f"start={period.start.isoformat()}&end={period.end.isoformat()}",
        "presets": [
            (days, period.length == days and period.end == reports.today(request.tenant)) for days in PRESETS
        ],
    }
    return render(request, "tickets/reports/overview.html", context)


@member_required
def export_csv(request, table: str):
    if table not in reports_csv.TABLES:
        raise Http404("No such table.")
    _, period = _period(request)
    report = reports.build(request.membership, period)
    response = HttpResponse(reports_csv.to_csv(report, table), content_type="text/csv; charset=utf-8")
    filename = f"{request.tenant.slug}-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
