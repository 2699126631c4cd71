/* lakeforge
checks:
  - {type: unique, column: employee_number}
*/
select
    e.employee_number,
    e.employee_name,
    e.job_title,
    e.email,
    e.reports_to,
    m.employee_name as manager_name,
    o.office_code,
    o.city as office_city,
    o.country as office_country,
    o.territory
from silver.employees e
left join silver.employees m on m.employee_number = e.reports_to
left join silver.offices o on o.office_code = e.office_code
